import sys

from coengage.cli import main

sys.exit(main())
