"""Registry of the official checkpoints each extractor loads, and a download-and-verify command.

Machines without internet (CI, the demo) use `weights: random` in params.yaml; every cache and report
then says so. With internet, `vemo weights fetch NAME` downloads into `weights/` and checks the
sha256 (the full digest, or the 8-character prefix that torchvision puts in its file names).
Checkpoints published only behind a sharing page (Google Drive) cannot be fetched by a script:
download them by hand, then `vemo weights verify NAME FILE` records their digest.

    vemo weights list
    vemo weights fetch vgg16_imagenet [--dest weights] [--url URL]
    vemo weights verify r3d101_kinetics400_2018 weights/resnet-101-kinetics.pth
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipeline.file_memo import sha256_of

DEFAULT_DEST = Path("weights")
TIMEOUT_S = 60          # a host that drops packets fails in a minute instead of hanging


class FetchError(RuntimeError):
    """A download that could not be made (no network, host down, an HTTP error); nothing is left behind."""


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    extractors: tuple[str, ...]
    url: str
    filename: str
    sha256: str            # full hex digest, a prefix of it, or "" where none is published
    format: str
    licence: str
    direct: bool = True    # False: a sharing page, download by hand

    def matches(self, digest: str) -> bool | None:
        """True / False against the published digest; None when none is published."""
        return digest.startswith(self.sha256) if self.sha256 else None


HARA = "https://github.com/kenshohara/3D-ResNets-PyTorch (README, 'Pre-trained models')"
ALBANIE = "https://www.robots.ox.ac.uk/~albanie/models/pytorch-mcn/vgg_face_dag.pth"
VGGFACE_LICENCE = "non-commercial research use (Oxford VGG, robots.ox.ac.uk/~vgg/software/vgg_face)"
REGISTRY: dict[str, WeightsEntry] = {e.name: e for e in [
    WeightsEntry("r3d101_kinetics400_2018", ("r3d101_conv5",), HARA, "resnet-101-kinetics.pth", "",
                 "3D-ResNets-PyTorch CVPR2018 release: {'arch', 'epoch', 'state_dict' ('module.'-prefixed "
                 "keys), 'optimizer'}, fc 400 classes", "MIT (code); Kinetics-400 terms", direct=False),
    WeightsEntry("r3d101_kinetics700_2020", ("r3d101_conv5",), HARA, "r3d101_K_200ep.pth", "",
                 "3D-ResNets-PyTorch 2020 release: {'arch', 'epoch', 'state_dict', 'optimizer'}, fc 700 "
                 "classes", "MIT (code); Kinetics-700 terms", direct=False),
    WeightsEntry("r3d101_kinetics700_moments_2020", ("r3d101_conv5",), HARA, "r3d101_KM_200ep.pth", "",
                 "3D-ResNets-PyTorch 2020 release, Kinetics-700 + Moments in Time, fc 1039 classes",
                 "MIT (code); Kinetics-700 and Moments in Time terms", direct=False),
    WeightsEntry("vgg16_imagenet", ("vgg16_fc6",), "https://download.pytorch.org/models/vgg16-397923af.pth",
                 "vgg16-397923af.pth", "397923af", "torchvision vgg16 state dict",
                 "BSD-3-Clause (torchvision); ImageNet terms"),
    WeightsEntry("alexnet_imagenet", ("alexnet_fc7", "alexnet_fc7_spec"),
                 "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "alexnet-owt-7be5be79.pth",
                 "7be5be79", "torchvision alexnet state dict", "BSD-3-Clause (torchvision); ImageNet terms"),
    WeightsEntry("resnet18_imagenet", ("mfcc_resnet18",),
                 "https://download.pytorch.org/models/resnet18-f37072fd.pth", "resnet18-f37072fd.pth",
                 "f37072fd", "torchvision resnet18 state dict", "BSD-3-Clause (torchvision); ImageNet terms"),
    WeightsEntry("resnet50_imagenet", ("mfcc_resnet50",),
                 "https://download.pytorch.org/models/resnet50-0676ba61.pth", "resnet50-0676ba61.pth",
                 "0676ba61", "torchvision resnet50 state dict (IMAGENET1K_V1)",
                 "BSD-3-Clause (torchvision); ImageNet terms"),
    WeightsEntry("vggface_dag", ("vggface_fc6",),
                 ALBANIE, "vgg_face_dag.pth",
                 "", "VGG-Face converted to PyTorch (vgg_face_dag layout); convert with "
                 "`python -m pipeline.extractors.vggface_convert IN OUT`",
                 VGGFACE_LICENCE),
]}


def get_entry(name: str) -> WeightsEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown checkpoint {name!r}; known: {sorted(REGISTRY)}") from None


def fetch(name: str, dest: Path = DEFAULT_DEST, url: str | None = None) -> Path:
    """Download into `dest` (through a temporary file, renamed only once verified); returns the path."""
    entry = get_entry(name)
    if not entry.direct and url is None:
        raise RuntimeError(f"{name} is published on a sharing page, not a direct link: download "
                           f"{entry.filename} by hand from {entry.url}, "
                           f"then `vemo weights verify {name} FILE`")
    dest.mkdir(parents=True, exist_ok=True)
    target, source = dest / entry.filename, url or entry.url
    part: Path | None = None
    try:
        # the connection first: a host that cannot be reached leaves no .part file behind
        with urllib.request.urlopen(source, timeout=TIMEOUT_S) as response, \
                tempfile.NamedTemporaryFile(dir=dest, delete=False, suffix=".part") as tmp:
            part = Path(tmp.name)
            shutil.copyfileobj(response, tmp)
    except (urllib.error.URLError, OSError) as exc:
        if part is not None:
            part.unlink(missing_ok=True)
        raise FetchError(f"{name}: cannot download {source}: {unreachable(source, exc)}; without internet, "
                         f"copy {entry.filename} into {dest} by hand and run "
                         f"`vemo weights verify {name} FILE`") from None
    verify(name, part, on_mismatch_delete=True)
    part.replace(target)
    return target


def unreachable(url: str, exc: BaseException) -> str:
    """Why `url` could not be read, in words: the host cannot be reached, or what the server said."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered {exc.code} {exc.reason}"
    host = urllib.parse.urlsplit(url).hostname
    reason = getattr(exc, "reason", exc)
    if host:
        return f"the host {host} cannot be reached ({reason})"
    return str(reason)


def verify(name: str, path: Path, on_mismatch_delete: bool = False) -> str:
    """sha256 of `path`, checked against the registry; raises on a mismatch."""
    entry, digest = get_entry(name), sha256_of(path)
    if entry.matches(digest) is False:
        if on_mismatch_delete:
            path.unlink()
        raise ValueError(f"{path}: sha256 {digest} does not match the published {entry.sha256} of {name}")
    return digest


def digest_line(entry: WeightsEntry) -> str:
    """What `list` says of the digest: the full sha256, or that only a prefix (or none) is published."""
    if len(entry.sha256) == 64:
        return f"sha256: {entry.sha256}"
    if entry.sha256:
        return f"sha256 prefix: {entry.sha256} (only this prefix is published, in the file name)"
    return "sha256: not published (`vemo weights verify` prints the file's)"


EXAMPLES = {
    None: "examples:\n  vemo weights list\n  vemo weights fetch alexnet_imagenet\n"
          "  vemo weights verify vggface_dag weights/vgg_face_dag.pth",
    "list": "example:\n  vemo weights list",
    "fetch": "examples:\n  vemo weights fetch vgg16_imagenet --dest weights\n"
             "  vemo weights fetch vgg16_imagenet --url file:///mnt/usb/vgg16-397923af.pth",
    "verify": "example:\n  vemo weights verify r3d101_kinetics400_2018 weights/resnet-101-kinetics.pth",
}


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="vemo weights", description="official checkpoints",
                                     epilog=EXAMPLES[None], formatter_class=raw)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="each checkpoint: extractors, where to get it, file, digest, licence",
                   epilog=EXAMPLES["list"], formatter_class=raw)
    f = sub.add_parser("fetch", help="download a checkpoint with a direct link and check its digest",
                       epilog=EXAMPLES["fetch"], formatter_class=raw)
    f.add_argument("name", help=f"one of: {', '.join(REGISTRY)}")
    f.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    f.add_argument("--url", help="another location of the same file (a mirror, or file:// for a local copy)")
    v = sub.add_parser("verify", help="sha256 of a file, checked against the registry",
                       epilog=EXAMPLES["verify"], formatter_class=raw)
    v.add_argument("name", help=f"one of: {', '.join(REGISTRY)}")
    v.add_argument("path", type=Path)
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (KeyError, ValueError, RuntimeError) as exc:
        # an unknown name, a digest that does not match, a sharing page, a host that cannot be reached:
        # one line, exit 2 (a missing file is FileNotFoundError, which `vemo` reports the same way)
        print(f"vemo weights: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.action == "list":
        for e in REGISTRY.values():
            how = e.url if e.direct else f"by hand from {e.url}"
            print(f"{e.name}\n  for: {', '.join(e.extractors)}\n  get: {how}\n  file: {e.filename}  "
                  f"{digest_line(e)}\n  format: {e.format}\n  licence: {e.licence}")
    elif args.action == "fetch":
        print(f"saved {fetch(args.name, args.dest, args.url)}")
    else:
        digest = verify(args.name, args.path)
        state = {True: "matches the published digest", None: "no published digest to compare"}
        print(f"{args.path}: sha256 {digest} ({state[get_entry(args.name).matches(digest)]})")
    return 0
