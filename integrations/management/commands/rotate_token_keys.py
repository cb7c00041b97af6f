"""Re-encrypt every stored provider token under the first key of TOKEN_ENCRYPTION_KEYS.

Rotation: put the new key first (keep the old one after it), deploy, run this command, then
remove the old key.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from integrations import crypto
from integrations.models import Connection, PendingRevocation

FIELDS = ("access_token_encrypted", "refresh_token_encrypted")


class Command(BaseCommand):
    help = "Re-encrypt all stored provider tokens with the current (first) key."

    def handle(self, *args, **options):
        total = 0
        for model in (Connection, PendingRevocation):
            with transaction.atomic():
                for row in model.objects.select_for_update().only("pk", *FIELDS):
                    for field in FIELDS:
                        value = getattr(row, field)
                        if value:
                            setattr(row, field, crypto.rotate(value))
                    row.save(update_fields=list(FIELDS))
                    total += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the tokens of {total} row(s) under the current key."))
