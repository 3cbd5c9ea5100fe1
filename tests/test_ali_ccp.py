"""The Ali-CCP loader: the preprocessed sample, the raw Tianchi format, errors."""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skmtl import ESMMEstimator
from skmtl.datasets import load_ali_ccp

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "ali-ccp-sample"
CATEGORICAL = [
    "101", "121", "122", "124", "125", "126", "127", "128", "129", "205", "206",
    "207", "210", "216", "508", "509", "702", "853", "301", "109_14", "110_14",
    "127_14", "150_14",
]  # fmt: skip
NUMERIC = [
    f"D{f}"
    for f in ["109_14", "110_14", "127_14", "150_14", "508", "509", "702", "853"]
]


@pytest.fixture(scope="module")
def sample_home():
    if not (SAMPLE / "ali_ccp_train_sample.csv").is_file():
        pytest.skip(f"the Ali-CCP sample is not in {SAMPLE}")
    return SAMPLE


@pytest.mark.parametrize(
    "split, rows, clicks, purchases",
    [("train", 100, 7, 1), ("validation", 50, 3, 1), ("test", 50, 2, 1)],
)
def test_preprocessed_sample(sample_home, split, rows, clicks, purchases):
    bunch = load_ali_ccp(sample_home, split=split)
    assert bunch.data.shape == (rows, 31)
    assert bunch.feature_names == CATEGORICAL + NUMERIC
    assert bunch.categorical_features == CATEGORICAL
    assert bunch.numeric_features == NUMERIC
    assert bunch.target_names == ["click", "purchase"]
    assert (bunch.data[CATEGORICAL].dtypes == object).all()
    assert (bunch.data[NUMERIC].dtypes == np.float64).all()
    assert bunch.target.sum().tolist() == [clicks, purchases]
    assert (bunch.target.dtypes == np.int64).all()
    assert bunch.frame.shape == (rows, 33)
    tag = {"train": "train", "validation": "val", "test": "test"}[split]
    assert bunch.filenames[0].endswith(f"ali_ccp_{tag}_sample.csv")


def test_preprocessed_nrows_and_an_esmm_fit(sample_home):
    bunch = load_ali_ccp(sample_home, nrows=40)
    assert len(bunch.data) == 40
    train = load_ali_ccp(sample_home)
    est = ESMMEstimator(
        funnel=train.target_names, max_iter=1, device="cpu", random_state=0
    )
    proba = est.fit(train.data, train.target).predict_proba(train.data)
    assert proba.shape == (100, 2, 2)


def _features(items):
    return "\x01".join(
        f"{field}\x02{feature}\x03{value}" for field, feature, value in items
    )


def _write_raw(folder, split="train"):
    """A tiny raw pair: 5 skeleton rows (one dropped) and 2 common-feature rows."""
    common = [
        (
            "u1",
            [
                ("101", "user_a", "1.0"),
                ("109_14", "cat_7", "0.25"),
                ("121", "age_3", "1.0"),
            ],
        ),
        ("u2", [("101", "user_b", "1.0"), ("127_14", "brand_9", "4.5")]),
    ]
    skeleton = [
        ("s1", 1, 0, "u1", [("205", "item_1", "1.0"), ("508", "shop_1", "2.0")]),
        ("s2", 0, 1, "u1", [("205", "item_2", "1.0")]),  # purchase without click
        ("s3", 1, 1, "u2", [("205", "item_3", "1.0"), ("205", "item_4", "1.0")]),
        ("s4", 0, 0, "u2", [("206", "cat_1", "1.0"), ("999", "ignored", "1.0")]),
        ("s5", 0, 0, "u1", [("853", "ad_1", "3.0")]),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"common_features_{split}.csv", "w", encoding="utf-8") as f:
        f.writelines(
            f"{key},{len(items)},{_features(items)}\n" for key, items in common
        )
    with open(folder / f"sample_skeleton_{split}.csv", "w", encoding="utf-8") as f:
        f.writelines(
            f"{sid},{click},{buy},{key},{len(items)},{_features(items)}\n"
            for sid, click, buy, key, items in skeleton
        )


def test_raw_files_are_joined_with_their_common_features(tmp_path):
    _write_raw(tmp_path / "ali-ccp")
    bunch = load_ali_ccp(tmp_path)
    data, target = bunch.data, bunch.target
    assert target.to_numpy().tolist() == [[1, 0], [1, 1], [0, 0], [0, 0]]  # s2 dropped
    assert data["101"].tolist() == ["user_a", "user_b", "user_b", "user_a"]
    assert data["205"].tolist()[:2] == [
        "item_1",
        "item_4",
    ]  # the last of a repeated field
    assert pd.isna(data["205"].iloc[2]) and data["206"].iloc[2] == "cat_1"
    assert data["D109_14"].iloc[0] == 0.25 and np.isnan(data["D109_14"].iloc[1])
    assert data["D508"].iloc[0] == 2.0 and data["D853"].iloc[3] == 3.0
    assert data["D127_14"].iloc[1] == 4.5
    assert (data[CATEGORICAL].dtypes == object).all()
    assert (data[NUMERIC].dtypes == np.float64).all()
    assert len(load_ali_ccp(tmp_path, nrows=2).data) == 2


def test_raw_test_file_splits_into_validation_and_test(tmp_path):
    _write_raw(tmp_path, split="test")
    validation = load_ali_ccp(tmp_path, split="validation")
    test = load_ali_ccp(tmp_path, split="test")
    assert validation.data["101"].tolist() == ["user_a", "user_b"]  # kept rows 0, 2
    assert test.data["101"].tolist() == ["user_b", "user_a"]  # kept rows 1, 3
    assert validation.filenames[0].endswith("sample_skeleton_test.csv")


def test_preprocessed_layout_is_preferred(tmp_path, sample_home):
    _write_raw(tmp_path)
    shutil.copy(
        sample_home / "ali_ccp_train_sample.csv", tmp_path / "ali_ccp_train.csv"
    )
    assert len(load_ali_ccp(tmp_path).data) == 100


def test_missing_files_list_every_path_tried(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_ali_ccp(tmp_path, split="validation")
    message = str(info.value)
    for folder in (tmp_path, tmp_path / "ali-ccp"):
        for name in (
            "ali_ccp_val.csv",
            "ali_ccp_val_sample.csv",
            "sample_skeleton_test.csv",
            "common_features_test.csv",
        ):
            assert str(folder / name) in message
    assert "https://tianchi.aliyun.com/dataset/408" in message


def test_raw_files_in_another_format_are_named(tmp_path):
    _write_raw(tmp_path)
    with open(tmp_path / "sample_skeleton_train.csv", "a", encoding="utf-8") as f:
        f.write("s6,yes,0,u1,1,205\x02item\x031.0\n")
    with pytest.raises(
        ValueError, match=re.escape("sample_skeleton_train.csv, line 6")
    ):
        load_ali_ccp(tmp_path)
    _write_raw(tmp_path)
    with open(tmp_path / "sample_skeleton_train.csv", "a", encoding="utf-8") as f:
        f.write(f"s6,0,0,u9,1,{_features([('205', 'item', '1.0')])}\n")
    with pytest.raises(ValueError, match="1 common feature indices .* 'u9'"):
        load_ali_ccp(tmp_path)


def test_preprocessed_file_without_the_columns(tmp_path):
    pd.DataFrame({"click": [0], "purchase": [0], "101": [1]}).to_csv(
        tmp_path / "ali_ccp_test.csv", index=False
    )
    with pytest.raises(ValueError, match="lacks the columns '109_14', '110_14'"):
        load_ali_ccp(tmp_path, split="test")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "val"}, "split must be one of"),
        ({"nrows": 0}, "nrows must be an integer"),
    ],
)
def test_invalid_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_ali_ccp(tmp_path, **kwargs)
