"""mmgscnn.visualization.prediction_pictures: the images a file, folder or
glob pattern names."""
import pytest

from helpers import write_images
from mmgscnn.visualization.prediction_pictures import find_images


def test_find_images_takes_files_folders_and_globs(tmp_path):
    images = write_images(tmp_path / 'images', n=3)
    (images / 'notes.txt').write_text('not an image')
    names = [str(images / f'img{i}.png') for i in range(3)]
    assert find_images(names[1]) == [names[1]]
    assert find_images(str(images)) == names
    assert find_images(str(images / 'img[02].png')) == [names[0], names[2]]
    with pytest.raises(ValueError, match='no images found'):
        find_images(str(images / '*.jpg'))
