import sys

from gateproof.cli import main

sys.exit(main())
