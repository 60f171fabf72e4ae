"""Launch the hte explorer in the browser: ``python app.py [RUN_DIR] [--host H] [--port N]``.

Thin wrapper: everything lives in ``hte.app`` (see ``hte.app.launch``).
"""

import sys

from hte.app import main

if __name__ == "__main__":
    sys.exit(main())
