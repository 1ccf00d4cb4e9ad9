"""Face detection on the decoded frames (MTCNN from facenet-pytorch) and face crops for VGG-Face."""
