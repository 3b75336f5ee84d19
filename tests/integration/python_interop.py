#!/usr/bin/python3
"""PyTorch's side of tests/integration/python_interop_test.cpp.

What a PyTorch user does with ddpipe's files, with Debian's python3-torch and torchvision:

  pngs DATASET_DIR OUT_DIR N       the first N test images of an ingested dataset as PNG files
  classify VERSION_DIR PNG...      model.pth into torchvision's resnet18 (resnet18-cifar: its
                                   stem changed as the README says), preprocessed as the
                                   README says (pixels/255, the manifest's mean/std); one JSON
                                   line per file: {"file", "class_index", "probabilities"}
  safetensors VERSION_DIR          parses model.safetensors by hand (8-byte length, JSON header,
                                   raw bytes) and compares every tensor with model.pth
  load FILE.pth NUM_CLASSES        torchvision's resnet18(num_classes).load_state_dict(FILE)
  save-resnet18 OUT NUM_CLASSES [--rename OLD=NEW | --protocol P]
                                   torch.save(torchvision resnet18 state_dict()) (seeded, with
                                   non-trivial BatchNorm statistics), and OUT.batch.pth: a fixed
                                   input batch and torchvision's eval-mode logits for it
Exit status 0 on success; a mismatch is printed and exits 1.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision
from PIL import Image


def pngs(dataset_dir, out_dir, n):
    meta = json.load(open(os.path.join(dataset_dir, "manifest.json")))
    c, h, w = meta["channels"], meta["height"], meta["width"]
    raw = np.fromfile(os.path.join(dataset_dir, "test.images"), dtype=np.uint8)
    images = raw.reshape(-1, c, h, w)[:n]
    os.makedirs(out_dir, exist_ok=True)
    for i, img in enumerate(images):
        hwc = img.transpose(1, 2, 0)
        pil = Image.fromarray(hwc[:, :, 0] if c == 1 else hwc, "L" if c == 1 else "RGB")
        pil.save(os.path.join(out_dir, f"{i:04d}.png"))


def torchvision_model(version_dir):
    """The README's recipe: model.pth into torchvision's resnet18."""
    manifest = json.load(open(os.path.join(version_dir, "manifest.json")))
    spec = manifest["model_spec"]
    assert spec["arch"] in ("resnet18", "resnet18-cifar"), spec
    model = torchvision.models.resnet18(num_classes=spec["num_classes"])
    channels = spec["in_channels"]
    if spec["arch"] == "resnet18-cifar":  # the two-line stem change
        model.conv1 = torch.nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = torch.nn.Identity()
    elif channels == 1:  # 1-channel data (Fashion-MNIST): a 1-channel stem
        model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.load_state_dict(torch.load(os.path.join(version_dir, "model.pth")))
    return model.eval(), manifest


def classify(version_dir, files):
    model, manifest = torchvision_model(version_dir)
    ds = manifest["dataset"]
    mean = torch.tensor(ds["mean"]).view(-1, 1, 1)
    std = torch.tensor(ds["std"]).view(-1, 1, 1)
    for f in files:
        img = Image.open(f).convert("L" if ds["channels"] == 1 else "RGB")
        x = torch.from_numpy(np.array(img, dtype=np.float32) / 255.0)
        x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
        x = (x - mean) / std
        with torch.no_grad():
            p = torch.softmax(model(x.unsqueeze(0)), 1)[0]
        print(json.dumps({"file": f, "class_index": int(p.argmax()),
                          "probabilities": [float(v) for v in p]}))


DTYPES = {"F32": (np.float32, torch.float32), "I64": (np.int64, torch.int64),
          "F64": (np.float64, torch.float64)}


def safetensors(version_dir):
    blob = open(os.path.join(version_dir, "model.safetensors"), "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    pth = torch.load(os.path.join(version_dir, "model.pth"))
    names = [k for k in header if k != "__metadata__"]
    if names != list(pth.keys()):
        print("names differ:", sorted(set(names) ^ set(pth.keys())))
        return 1
    for name in names:
        e = header[name]
        begin, end = e["data_offsets"]
        np_type, torch_type = DTYPES[e["dtype"]]
        t = torch.from_numpy(np.frombuffer(data[begin:end], dtype=np_type).copy())
        t = t.reshape(e["shape"])
        ref = pth[name]
        if ref.dtype != torch_type or list(ref.shape) != e["shape"] or not torch.equal(t, ref):
            print("tensor differs:", name, e["dtype"], e["shape"], ref.dtype, list(ref.shape))
            return 1
    print(json.dumps({"tensors": len(names), "metadata": header.get("__metadata__", {})}))
    return 0


def load(path, num_classes):
    model = torchvision.models.resnet18(num_classes=num_classes)
    state = torch.load(path)
    model.load_state_dict(state)
    print(json.dumps({"type": type(state).__name__, "tensors": len(state)}))


def save_resnet18(out, num_classes, renames, protocol=2):
    torch.manual_seed(5)
    model = torchvision.models.resnet18(num_classes=num_classes)
    with torch.no_grad():  # eval-mode BatchNorm that does something
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
                m.num_batches_tracked.fill_(3)
    state = model.state_dict()  # an OrderedDict with _metadata, as users save it
    for old, new in renames:
        state[new] = state.pop(old)
    torch.save(state, out, pickle_protocol=protocol)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        logits = model.eval()(x)
    torch.save({"input": x, "logits": logits}, out + ".batch.pth")


def main(argv):
    cmd = argv[1]
    if cmd == "pngs":
        pngs(argv[2], argv[3], int(argv[4]))
    elif cmd == "classify":
        classify(argv[2], argv[3:])
    elif cmd == "safetensors":
        return safetensors(argv[2])
    elif cmd == "load":
        load(argv[2], int(argv[3]))
    elif cmd == "save-resnet18":
        renames = [tuple(a.split("=")) for a in argv[5:]] if argv[4:5] == ["--rename"] else []
        protocol = int(argv[5]) if argv[4:5] == ["--protocol"] else 2
        save_resnet18(argv[2], int(argv[3]), renames, protocol)
    else:
        print("unknown command", cmd)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
