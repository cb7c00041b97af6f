"""Local fakes of the video providers (the "provider sandbox") for tests and the demo.

Mounted only when settings.PROVIDER_SANDBOX is true, at /sandbox/<provider>/ (urls/). One module per
provider (zoom.py, google.py, microsoft.py) on top of what they share (common.py).
"""
