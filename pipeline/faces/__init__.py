"""The faces stage: MTCNN (facenet-pytorch) on the decoded frames, one face per frame, crops for VGG-Face.

    config.py   FaceConfig and the configuration the cache hashes
    mtcnn.py    facenet-pytorch's MTCNN (its weights and steps), resampling and R-/O-net crops batched
    detect.py   the one-face-per-frame policy;  crop.py  the square crop
    worker.py   worker side: one video (the entry layout is documented there)
    stage.py    driver side: the cache and the summary
"""
