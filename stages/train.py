"""DVC stage `train@<key>`: train the head entry `heads.<key>` of params.yaml on the cached features.

    python -m stages.train vaanet [--params params.yaml]
"""

from __future__ import annotations

import sys

from pipeline.errors import ConfigError
from pipeline.manifests.result import ManifestError
from pipeline.training.stage import train_head
from stages.head_entry import head_stage


def main(argv: list[str] | None = None) -> int:
    stage = head_stage("train", __doc__.splitlines()[0], argv)
    try:
        train_head(stage.setup, stage.paths.read_manifest(), cache_dir=stage.paths.cache,
                   model_dir=stage.model_dir, live_dir=stage.report_dir / "live")
    except (ManifestError, ConfigError) as e:  # the dataset cannot make the protocol's splits (a class with
        # one video), or the manifest stage has not run
        print(f"train@{stage.setup.key}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
