"""``python -m examples.order_to_cash``: run the app (see app.py)."""

from .app import main

main()
