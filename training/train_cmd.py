"""``cxr train`` arguments -> :class:`training.train.TrainConfig`."""

from __future__ import annotations

import argparse

from training.train import TrainConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "data",
        help="class folders (one per class, e.g. COVID/, Normal/, 'Viral Pneumonia/'), a CSV "
        "manifest (path,label[,patient_id][,split]) or a folder with trainx.npy/trainy.npy",
    )
    p.add_argument("--out", required=True, help="run folder (cache, logs, metrics, bundle/)")
    p.add_argument("--backbone", choices=("vgg19", "compact"), default="vgg19")
    p.add_argument(
        "--weights",
        default="imagenet",
        help="imagenet (download), none (from scratch), or PATH to a local VGG19 weights file",
    )
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--epochs", type=int, default=40, help="epochs in all (default 40)")
    p.add_argument(
        "--stage1-epochs",
        type=int,
        default=None,
        help="epochs with the backbone frozen (default: a quarter)",
    )
    p.add_argument(
        "--fine-tune-from", default="block5", help="first VGG19 layer to unfreeze in stage 2"
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3, help="stage 1 learning rate")
    p.add_argument("--fine-tune-lr", type=float, default=1e-5, help="stage 2 learning rate")
    p.add_argument("--split", default="80/10/10", help="train/val/test shares (default 80/10/10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--class-map",
        default=None,
        help="extra FOLDER=CLASS pairs, e.g. 'Lung_Opacity=Pneumonia' (or =skip)",
    )
    p.add_argument(
        "--classes",
        default=None,
        help="the classes, comma-separated, in class-index order, e.g. 'COVID,non-COVID' "
        "(default: the labels in the data); a label outside them stops training",
    )
    p.add_argument("--balance", choices=("weights", "oversample"), default="weights")
    p.add_argument("--flip", action="store_true", help="allow horizontal flips (moves the heart!)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--patience", type=int, default=8, help="early-stopping patience")
    p.add_argument("--resize", choices=("stretch", "pad"), default="stretch")
    p.add_argument(
        "--distribute",
        choices=("auto", "mirrored", "none"),
        default="auto",
        help="auto: MirroredStrategy when several GPUs are visible",
    )
    p.add_argument("--workers", type=int, default=None, help="decode processes for the cache")
    p.add_argument("--model-name", default=None)
    p.add_argument("--demo", action="store_true", help="mark the bundle as a demo model")
    p.add_argument("--force", action="store_true", help="overwrite an existing bundle in --out")


def run(args: argparse.Namespace) -> int:
    from training.train import train

    cfg = TrainConfig(
        data=args.data, out=args.out, backbone=args.backbone, weights=args.weights,
        image_size=args.image_size, epochs=args.epochs, stage1_epochs=args.stage1_epochs,
        batch_size=args.batch_size, lr=args.lr, fine_tune_lr=args.fine_tune_lr,
        fine_tune_from=args.fine_tune_from, split=args.split, seed=args.seed,
        class_map=args.class_map, classes=args.classes, balance=args.balance, flip=args.flip,
        augment=not args.no_augment, patience=args.patience, resize=args.resize,
        distribute=args.distribute, workers=args.workers, model_name=args.model_name,
        demo=args.demo, force=args.force,
    )  # fmt: skip
    summary = train(cfg)
    print(
        f"train: done in {summary['seconds']} s; test accuracy {summary['test']['accuracy']:.4f}; "
        f"report {args.out}/report.md"
    )
    return 0
