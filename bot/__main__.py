"""`python -m bot ...`"""

from bot.cli.commands import main

raise SystemExit(main())
