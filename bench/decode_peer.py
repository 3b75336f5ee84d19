#!/usr/bin/env python3
"""The Python peer of ddpipe_decode_bench (issue 19, "decode rate per core"): the idiomatic
PyTorch input pipeline over the same JPEG files.

    taskset -c 1 /usr/bin/python3 bench/decode_peer.py --root DIR/train [--size 224] [--batch 64]

torchvision.datasets.ImageFolder(DIR/train) with RandomResizedCrop(size), RandomHorizontalFlip(),
ToTensor(), Normalize(ImageNet mean, std), in a torch.utils.data.DataLoader with num_workers=1
(decoding and transforms in one worker process, as ddpipe's one loader thread), batch --batch,
torch.set_num_threads(1). A warm-up pass first (file cache, imports), then the timed pass: from
creating the iterator to the last batch. Prints one JSON line like ddpipe_decode_bench: images,
seconds (wall), cpu_seconds (user + system of this process and of the worker, which is reaped
at the end of the pass), images_per_second, images_per_cpu_second, checksum.
"""
import argparse
import json
import resource
import time

import torch
from torchvision import datasets, transforms


def cpu_seconds():
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        u = resource.getrusage(who)
        total += u.ru_utime + u.ru_stime
    return total


def one_pass(loader):
    checksum = 0.0
    for images, _labels in loader:
        checksum += float(images.sum())
    return checksum


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(1)
    transform = transforms.Compose([
        transforms.RandomResizedCrop(args.size),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    dataset = datasets.ImageFolder(args.root, transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=False,
                                         num_workers=1)
    one_pass(loader)  # warm-up
    cpu0, t0 = cpu_seconds(), time.monotonic()
    checksum = one_pass(loader)
    seconds, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
    n = len(dataset)
    print(json.dumps({"images": n, "seconds": round(seconds, 4), "cpu_seconds": round(cpu, 4),
                      "images_per_second": round(n / seconds, 2),
                      "images_per_cpu_second": round(n / cpu, 2), "checksum": checksum}))


if __name__ == "__main__":
    main()
