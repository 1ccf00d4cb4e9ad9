"""Frozen backbones behind one interface (`base.Extractor`), in a registry (`base.EXTRACTORS`).

Each built-in extractor is a lazy entry below, one line each: `get_extractor(name)` imports its module on
first use, so a stage's workers import only the backbone they run. A new extractor is its own module
(a class decorated with `register_extractor`) plus one line here.
"""

from pipeline.extractors.base import EXTRACTORS, Extractor, get_extractor, list_extractors, register_extractor

EXTRACTORS.lazy("alexnet_fc7", "pipeline.extractors.alexnet")
EXTRACTORS.lazy("alexnet_fc7_spec", "pipeline.extractors.alexnet")
EXTRACTORS.lazy("mfcc", "pipeline.extractors.mfcc")
EXTRACTORS.lazy("mfcc_resnet18", "pipeline.extractors.mfcc_cnn")
EXTRACTORS.lazy("mfcc_resnet50", "pipeline.extractors.mfcc_cnn")
EXTRACTORS.lazy("r3d101_conv5", "pipeline.extractors.r3d")
EXTRACTORS.lazy("vgg16_fc6", "pipeline.extractors.vgg")
EXTRACTORS.lazy("vggface_fc6", "pipeline.extractors.vgg")

__all__ = ["EXTRACTORS", "Extractor", "get_extractor", "list_extractors", "register_extractor"]
