"""Microsoft Teams through Microsoft Graph: the client and the VideoProvider."""
