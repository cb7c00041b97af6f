"""Local fakes of video providers (the "provider sandbox") for tests and the demo.

Mounted only when settings.PROVIDER_SANDBOX is true; see zoom.py for the Zoom fake.
"""
