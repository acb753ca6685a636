"""``python -m affidavit.cli``."""

import sys

from affidavit.cli.main import main

sys.exit(main())
