#!/usr/bin/env bash
# Issue 27: the wheels a device machine lacks for `python -m bench.gpu_extract` on a prepared folder
# (its image has Python 3.12 with torch, torchvision, h5py, numpy, scipy, numba, PyYAML, tqdm, psutil,
# but not Dask, pydantic or librosa, and it reaches no registry). Downloads about 8 MB into .whl/
# (ignored: .git/info/exclude). Versions are those of this project's environment.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl \
    dask==2026.8.0 distributed==2026.8.0 locket==1.0.0 partd==1.4.2 tblib==3.2.2 tornado==6.6.1 \
    zict==3.0.0 pydantic==2.14.4 pydantic_core==2.50.5 typing-inspection==0.4.5 annotated-types==0.8.0 \
    librosa==0.11.0 audioread==3.1.0 decorator==5.3.1 pooch==1.9.0 platformdirs==4.14.9 \
    soundfile==0.14.0 soxr==1.1.0 cffi==2.1.1 pycparser==3.12
du -sh .whl
