"""labcrypto's nbgrader settings for students and instructor alike (the exchange).

Put this file where every account's nbgrader reads it: ``/etc/jupyter/``, the
image's ``{sys.prefix}/etc/jupyter/``, or a folder named by
``JUPYTER_CONFIG_PATH`` (what tests/test_hub.py does). The instructor's
course folder has its own ``nbgrader_config.py`` (``tools/release.py
--course`` writes it) with the same ``ignore`` list. See GRADING.md.
"""

import os

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "labcrypto"
# Every account must be able to write here: mkdir -p DIR && chmod 1777 DIR.
c.Exchange.root = os.environ.get("LABCRYPTO_EXCHANGE", "/srv/nbgrader/exchange")
# Private keys never travel: release, fetch, submit, collect and feedback all
# skip these names. The lab keeps keys outside the assignment folders anyway
# (~/.labcrypto/keys, see labcrypto.keys.default_dir); this is the second lock.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "*.key",
    "keys",
]
