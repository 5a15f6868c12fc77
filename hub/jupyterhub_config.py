"""labcrypto's settings for a JupyterHub that runs the lab for a class.

Load it at the end of your own ``jupyterhub_config.py`` (after your
authenticator and spawner):

    load_subconfig("/srv/labcrypto/hub/jupyterhub_config.py")

and install ``jupyter_server_config.py`` and ``nbgrader_config.py`` from
this folder where every student's server reads them (INSTRUCTORS.md, §1).
tests/test_hub.py runs its hub with this file.
"""

c = get_config()  # noqa: F821

# A whole class logging in at once takes longer than the default 30 s to start.
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 120
