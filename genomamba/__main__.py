import sys

from genomamba.cli import main

sys.exit(main())
