import sys

from fastem.cli.app import main

sys.exit(main())
