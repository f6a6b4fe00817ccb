"""A folder of images as a source: ``path/to/folder`` (jpg, jpeg, png, bmp, webp; sorted by name).

Every image is delivered (lossless) as fast as the consumer takes them, or paced at ``fps``.
Unreadable files are skipped and counted as failures. ``loop=True`` starts again at the end.
"""

import os

from edgekit.sources.base import Pacer, Source, SourceError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(folder):
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    return [os.path.join(folder, n) for n in names]


class ImageFolderSource(Source):
    scheme = "images"
    finite = True
    default_lossless = True

    def __init__(self, uri, fps=0.0, **opts):
        folder = os.path.realpath(os.path.expanduser(str(uri)))
        if not os.path.isdir(folder):
            raise SourceError("image folder not found: %s" % folder, hint="check the --source path")
        if fps and fps > 0:
            opts.setdefault("lossless", False)
        super(ImageFolderSource, self).__init__(uri, **opts)
        self.folder = folder
        self.fps = float(fps or 0.0)
        self._paths = []
        self._index = 0
        self._pacer = Pacer(self.fps, self._stop)

    def describe(self):
        return self.folder

    def _open(self):
        paths = list_images(self.folder)
        if not paths:
            raise SourceError("no images in %s" % self.folder,
                              hint="add %s files" % "/".join(e[1:] for e in IMAGE_EXTENSIONS))
        self._paths, self._index = paths, 0

    def _grab(self):
        import cv2

        while self._index < len(self._paths):
            path = self._paths[self._index]
            self._index += 1
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is not None:
                self._pacer.wait()
                return image
            self._note_failure(None)
            self.last_error = "cannot read image %s" % path
        return None
