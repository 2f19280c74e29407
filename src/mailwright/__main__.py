import sys

from mailwright.cli.main import main

sys.exit(main())
