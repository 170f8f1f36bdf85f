"""`tiny_imagenet` as a tensorflow-datasets builder, registered by importing this module.

Use `tfds.load("tiny_imagenet")`. A `tiny-imagenet-200.zip` (or its extracted
`tiny-imagenet-200/` folder) in the manual dir is used as it is, whatever its
number of classes; otherwise the official archive is downloaded and its md5
verified. The number of classes is read from the archive's `wnids.txt`.
"""

import tensorflow_datasets as tfds

from tinyresnet.data import tiny_imagenet_layout as tin
from tinyresnet.data.decode import decode_images


class TinyImagenet(tfds.core.GeneratorBasedBuilder):
    """Tiny ImageNet: 64x64 images of 200 ImageNet classes (or a class subset)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Official archive layout; test split unlabelled (label -1)."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Optional: place {tin.ARCHIVE_NAME} (or its extracted tiny-imagenet-200/ folder, or a "
        "class subset in the same layout) in the manual dir; without it the archive is downloaded."
    )

    def _info(self):
        return self.dataset_info_from_configs(
            description="Tiny ImageNet (Stanford CS231n): 64x64 images; labels follow wnids.txt.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(*tin.IMAGE_SIZE, 3)),
                # Names (wnids) are set from the archive's wnids.txt in _split_generators.
                "label": tfds.features.ClassLabel(),
                "file_name": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
            homepage="http://cs231n.stanford.edu/",
            metadata=tfds.core.MetadataDict(),
        )

    def _source(self, dl_manager):
        try:
            manual = dl_manager.manual_dir
        except AssertionError:  # tfds asserts that a manual dir exists and is not empty
            manual = None
        if manual is not None:
            for name in (tin.ARCHIVE_NAME, "tiny-imagenet-200"):
                if (manual / name).exists():
                    return str(manual / name)
        return tin.download(str(dl_manager.download_dir), url=tin.URL, md5=tin.MD5)

    def _split_generators(self, dl_manager):
        layout = tin.read_layout(self._source(dl_manager))
        self.info.features["label"].names = layout.wnids
        self.info.metadata["class_names"] = layout.class_names
        # A class subset may have no test/ folder: then there is no test split.
        return {split: self._generate_examples(layout, split) for split in tin.SPLITS
                if layout.splits[split].files}

    def _generate_examples(self, layout, split):
        s = layout.splits[split]
        for start in range(0, len(s.files), 2048):
            files = s.files[start:start + 2048]
            # Decoded here (always 3 channels) since some JPEGs are grayscale.
            images, _ = decode_images([layout.tree.read(f) for f in files],
                                      [layout.tree.describe(f) for f in files], tin.IMAGE_SIZE)
            for file, image, label in zip(files, images, s.labels[start:start + 2048]):
                name = file.rsplit("/", 1)[-1]
                yield name, {"image": image, "label": int(label), "file_name": name}
