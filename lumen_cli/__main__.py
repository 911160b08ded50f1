import sys

from lumen_cli.main import main

sys.exit(main())
