"""Send emails (the assistant forgot the node class)."""

import smtplib


async def send_email(to: str, subject: str, body: str) -> None:
    with smtplib.SMTP("localhost") as smtp:
        smtp.sendmail("noreply@example.com", [to], f"Subject: {subject}\n\n{body}")
