"""Build script of the fer_perception ROS 2 package (ament_python)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "fer_perception"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*")),
        (f"share/{PACKAGE}/models", glob("models/*")),
        (f"share/{PACKAGE}/media", glob("media/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="fer_perception maintainers",
    maintainer_email="fer-perception@example.org",
    description="Facial expression perception for social robots.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "camera_node = fer_perception.nodes.camera_node:main",
            "face_detection_node = fer_perception.nodes.face_detection_node:main",
            "monitor_node = fer_perception.nodes.monitor_node:main",
            "expression_node = fer_perception.nodes.expression_node:main",
            "behaviour_example_node = fer_perception.nodes.behaviour_example_node:main",
            "fer-run = fer_perception.runner:main",
            "fer-train-au = fer_perception.au.train_au:main",
            "fer-au-fit = fer_perception.au.fit:main",
            "fer-au-check = fer_perception.au.check:main",
            "fer-train = fer_perception.emotion.train:main",
            "fer-evaluate = fer_perception.emotion.evaluate:main",
            "fer-fit-fusion = fer_perception.emotion.fusion_fit:main",
            "fer-quantize = fer_perception.emotion.quantize:main",
            "fer-soup = fer_perception.emotion.soup:main",
            "fer-analyze = fer_perception.offline.analyze_cli:main",
            "fer-render = fer_perception.offline.render_cli:main",
            "fer-replay = fer_perception.nodes.bag_replay:main",
            "fer-record = fer_perception.nodes.bag_record:main",
        ],
    },
)
