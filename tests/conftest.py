import os

from hypothesis import settings

# CI runs derandomized so a red build is reproducible; locally examples vary.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("default", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
