"""Feature stages: a registered extractor (`pipeline.extractors`) over every video's cached inputs.

    config.py   ExtractorSpec and the configuration the cache hashes
    inputs.py   where each input kind's rows come from (decode, faces or another feature cache)
    device.py   which device a worker runs on
    worker.py   worker side: a group of videos batched through one network
    stage.py    driver side: the weights check, the cache and the summary
"""
