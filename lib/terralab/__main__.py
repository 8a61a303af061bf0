"""``python -m terralab`` — the same as the ``terralab`` command."""

from terralab.cli import main

raise SystemExit(main())
