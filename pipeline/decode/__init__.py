"""The decode stage: every video decoded once into exactly what the extractors read.

    config.py   DecodeConfig and the configuration the cache hashes
    video.py    one video: one pass of ffmpeg, or seeking (the entry layout is documented there)
    worker.py   worker side: probe and decode one video
    stage.py    driver side: the cache, the probe table, the summary
"""
