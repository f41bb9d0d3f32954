"""The installed distribution: one import root (`archon_gateway`), every package folder and
data file in the wheel, and a gateway that shares an environment with pal-mcp-server (zen),
whose wheel installs generic top-level names (`tools`, `server`, `utils`, `config`)."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import anyio
import pytest

from tests.import_root import FOLDERS, REPO, copy_folders
from tests.support import RawStdioPeer

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel as `pip wheel` builds it from a copy of this checkout (a build in place
    would leave build/ behind, whose stale files a later wheel would pick up). No network:
    the build backend comes from the dev extras."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    copy_folders(source)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    command += ["--quiet", "--wheel-dir", str(out), str(source)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    (built,) = out.glob("archon_gateway-*.whl")
    return built


def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_has_exactly_one_top_level_name(wheel: Path) -> None:
    names = wheel_names(wheel)
    top = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top == {"archon_gateway"}
    (top_level,) = [name for name in names if name.endswith(".dist-info/top_level.txt")]
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(top_level).decode().split() == ["archon_gateway"]


def test_every_package_folder_and_data_file_is_in_the_wheel(wheel: Path) -> None:
    names = set(wheel_names(wheel))
    for folder in FOLDERS:
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.relative_to(REPO).as_posix()
            assert f"archon_gateway/{relative}" in names, f"{relative} is not packaged"
    shipped = {path.name for path in (REPO / "manifests").glob("*.toml")}
    assert shipped
    for name in shipped:
        assert f"archon_gateway/manifests/{name}" in names
    assert "archon_gateway/tools/codegen/mixins.toml" in names
    assert "archon_gateway/gateway/py.typed" in names


def _venv_beside_pal(wheel: Path, where: Path) -> Path:
    """A fresh venv with our wheel installed in it; its dependencies and pal-mcp-server
    come from this environment's site-packages (a path line, so no editable hook rides
    along). Returns the venv's bin folder."""
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv)}))
    (purelib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    install += ["install", "--quiet", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    return venv / "bin"


def test_a_venv_with_pal_beside_the_gateway_imports_both(wheel: Path, tmp_path: Path) -> None:
    bin_dir = _venv_beside_pal(wheel, tmp_path)
    probe = (
        "import importlib.util, tools, config, utils\n"
        "import archon_gateway.gateway.app, archon_gateway.tools.codegen\n"
        "import archon_gateway.manifests as m, importlib.resources as r\n"
        "assert 'site-packages' in tools.__file__, tools.__file__\n"
        "assert hasattr(config, '__version__'), 'not pal config'\n"
        "assert 'archon_gateway' in archon_gateway.tools.codegen.__file__\n"
        "assert importlib.util.find_spec('gateway') is None\n"
        "assert importlib.util.find_spec('upstreams') is None\n"
        "print(sorted(p.name for p in r.files(m).iterdir() if p.name.endswith('.toml')))\n"
    )
    done = subprocess.run(
        [str(bin_dir / "python"), "-c", probe],
        cwd=tmp_path,  # not the checkout: its folders must not be on sys.path
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "zen.toml" in done.stdout


@pytest.mark.anyio
async def test_the_gateway_installed_beside_pal_serves(
    wheel: Path, tmp_path: Path, gateway_env: dict[str, str]
) -> None:
    bin_dir = _venv_beside_pal(wheel, tmp_path)
    command = [str(bin_dir / "archon-gateway"), "serve"]
    with anyio.fail_after(60):
        process = await anyio.open_process(
            command, env=gateway_env, cwd=tmp_path, stderr=subprocess.DEVNULL
        )
        async with process:
            peer = RawStdioPeer(process)
            reply = await peer.initialize()
            assert reply["result"]["serverInfo"]["name"] == "archon"
            called = await peer.request("tools/call", {"name": "gateway_info", "arguments": {}})
            info = called["result"]["structuredContent"]
            assert info["status"] == "ok"
            assert info["counts"]["tools"] > 5
            assert process.stdin is not None
            await process.stdin.aclose()
            assert await process.wait() == 0
