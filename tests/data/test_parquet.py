import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distbp.data import ParquetDataset
from distbp.data.parquet import write_table
from distbp.errors import UsageError


def make_file(path, n=100, width=6, row_group_size=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, width)).astype(np.float32)
    y = rng.integers(0, 5, n)
    write_table(path, {"features": x, "label": y}, row_group_size)
    return x, y


@pytest.fixture
def counted_reads(monkeypatch):
    """Every ParquetFile.read_row_group call, as (file name, row group)."""
    calls = []
    real = pq.ParquetFile.read_row_group

    def spy(self, i, *args, **kwargs):
        calls.append(i)
        return real(self, i, *args, **kwargs)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    return calls


def test_take_returns_the_requested_rows_in_order(tmp_path):
    x, y = make_file(tmp_path / "d.parquet")
    ds = ParquetDataset(tmp_path / "d.parquet", sample_shape=(2, 3))
    assert len(ds) == 100 and ds.num_row_groups == 7 and ds.num_classes == y.max() + 1
    idx = np.array([99, 0, 17, 17, 50, 3])
    gx, gy = ds.take(idx)
    assert gx.shape == (6, 2, 3) and gx.dtype == np.float32 and gy.dtype == np.int64
    np.testing.assert_array_equal(gx.reshape(6, 6), x[idx])
    np.testing.assert_array_equal(gy, y[idx])
    ex, ey = ds.take([])
    assert ex.shape == (0, 2, 3) and ey.shape == (0,)
    with pytest.raises(IndexError, match="100 rows"):
        ds.take([100])


def test_reads_only_the_row_groups_holding_the_indices(tmp_path, counted_reads):
    make_file(tmp_path / "d.parquet")  # row groups of 16 rows: [0,16) [16,32) ... [96,100)
    ds = ParquetDataset(tmp_path / "d.parquet")
    assert counted_reads == []  # opening reads footers only
    ds.take([20, 31, 40])
    assert sorted(counted_reads) == [1, 2] and ds.row_groups_read == 2
    ds.take([21, 45])  # cached
    assert sorted(counted_reads) == [1, 2]
    ds.take([99])
    assert sorted(counted_reads) == [1, 2, 6]


def test_lru_cache_respects_its_budget(tmp_path, counted_reads):
    make_file(tmp_path / "d.parquet")
    one_group = 16 * 6 * 4 + 16 * 8  # bytes of a decoded row group: x float32 + y int64
    ds = ParquetDataset(tmp_path / "d.parquet", cache_bytes=2 * one_group)
    for k in (0, 1, 2, 0):  # row group 0 is evicted by the time it is asked for again
        ds.take([16 * k])
    assert counted_reads == [0, 1, 2, 0]
    ds.take([16 * 2])
    assert counted_reads == [0, 1, 2, 0]


def test_directory_of_files_and_split_directories(tmp_path):
    (tmp_path / "train").mkdir()
    xa, ya = make_file(tmp_path / "train" / "part-0.parquet", n=30, seed=1)
    xb, yb = make_file(tmp_path / "train" / "part-1.parquet", n=25, seed=2)
    ds = ParquetDataset(tmp_path, "train")
    assert len(ds) == 55 and len(ds.files) == 2
    gx, gy = ds.take(np.arange(55))
    np.testing.assert_array_equal(gx, np.concatenate([xa, xb]))
    np.testing.assert_array_equal(gy, np.concatenate([ya, yb]))
    assert len(ParquetDataset(tmp_path / "train")) == 55  # a plain directory of files


def test_variable_length_list_column(tmp_path):
    rows = [[float(i), i + 0.5, -i] for i in range(10)]
    pq.write_table(pa.table({"f": pa.array(rows, pa.list_(pa.float64())), "c": pa.array(range(10))}),
                   tmp_path / "v.parquet", row_group_size=4)
    ds = ParquetDataset(tmp_path / "v.parquet", feature_col="f", label_col="c", dtype=np.float64)
    assert ds.sample_shape == (3,)
    gx, gy = ds.take([9, 2])
    np.testing.assert_array_equal(gx, [rows[9], rows[2]])
    rows[5] = [1.0, 2.0]
    pq.write_table(pa.table({"f": pa.array(rows, pa.list_(pa.float64())), "c": pa.array(range(10))}),
                   tmp_path / "bad.parquet", row_group_size=4)
    bad = ParquetDataset(tmp_path / "bad.parquet", feature_col="f", label_col="c", sample_shape=(3,))
    with pytest.raises(UsageError, match=r"bad.parquet: column 'f' row 5 has 2 values, expected 3"):
        bad.take([5])


# -- bad input: each error names the file and the culprit ---------------------------------------

def test_missing_column_names_file_and_existing_columns(tmp_path):
    make_file(tmp_path / "d.parquet")
    with pytest.raises(UsageError, match=r"d.parquet: no column 'pixels'; its columns are "
                                         r"\['features', 'label'\]"):
        ParquetDataset(tmp_path / "d.parquet", feature_col="pixels")
    with pytest.raises(UsageError, match="no column 'target'"):
        ParquetDataset(tmp_path / "d.parquet", label_col="target")


def test_wrong_column_types(tmp_path):
    pq.write_table(pa.table({"features": pa.array([1.0, 2.0]), "label": pa.array([0, 1])}),
                   tmp_path / "scalar.parquet")
    with pytest.raises(UsageError, match="scalar.parquet: feature column 'features' must be a list"):
        ParquetDataset(tmp_path / "scalar.parquet")
    pq.write_table(pa.table({"features": pa.array([[1.0], [2.0]]), "label": pa.array(["a", "b"])}),
                   tmp_path / "strlabel.parquet")
    with pytest.raises(UsageError, match="label column 'label' must hold an integer, a float or a "
                                         "list of numbers per row, got string"):
        ParquetDataset(tmp_path / "strlabel.parquet")
    pq.write_table(pa.table({"features": pa.array([[1.0], [2.0]]), "label": pa.array([0.5, 1.5])}),
                   tmp_path / "floatlabel.parquet")
    with pytest.raises(UsageError, match="must hold one integer per row for classification"):
        ParquetDataset(tmp_path / "floatlabel.parquet", task="classification")


def test_real_valued_and_list_targets(tmp_path):
    """Float labels are regression targets (n,); list labels target vectors (n, k) in x's dtype."""
    x = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    pq.write_table(pa.table({"features": pa.array(x), "label": pa.array([0.5, 1.5, -2.0])}),
                   tmp_path / "reg.parquet")
    ds = ParquetDataset(tmp_path / "reg.parquet", dtype=np.float64)
    assert ds.task == "regression" and ds.num_classes is None
    xs, ys = ds.take([2, 0])
    assert ys.dtype == np.float64 and ys.tolist() == [-2.0, 0.5]
    assert ds.describe()["num_outputs"] == 1 and ds.describe()["target_shape"] == ()
    pq.write_table(pa.table({"features": pa.array(x), "label": pa.array([[0, 1, 1], [1, 0, 0],
                                                                         [0, 0, 1]])}),
                   tmp_path / "multi.parquet")
    ds = ParquetDataset(tmp_path / "multi.parquet")
    _, ys = ds.take([1, 2])
    assert ys.dtype == np.float32 and ys.tolist() == [[1, 0, 0], [0, 0, 1]]
    assert ds.describe()["num_outputs"] == 3 and ds.describe()["target_shape"] == (3,)
    assert ds.take([])[1].shape == (0, 3)


def test_variable_length_rows_are_checked_against_the_shape_on_open(tmp_path):
    """Lists of varying type (not fixed-size) are checked on the first row group when opened, not
    first when a worker reads them."""
    pq.write_table(pa.table({"features": pa.array([[1.0] * 40] * 4), "label": pa.array([0] * 4)}),
                   tmp_path / "d.parquet")
    assert ParquetDataset(tmp_path / "d.parquet", sample_shape=[1, 40]).sample_shape == (1, 40)
    with pytest.raises(UsageError, match=r"holds 40 values per sample.*sample_shape \[1, 50\]") as e:
        ParquetDataset(tmp_path / "d.parquet", sample_shape=[1, 50])
    assert e.value.param == "sample_shape"


def test_given_num_classes_is_checked_against_the_labels(tmp_path):
    _, y = make_file(tmp_path / "d.parquet")
    with pytest.raises(UsageError, match=f"num_classes=3 but the labels go up to {y.max()}"):
        ParquetDataset(tmp_path / "d.parquet", num_classes=3)
    assert ParquetDataset(tmp_path / "d.parquet", num_classes=7).num_classes == 7


def test_shape_that_does_not_fit(tmp_path):
    make_file(tmp_path / "d.parquet")
    with pytest.raises(UsageError, match=r"holds 6 values per sample.*sample_shape \[1, 8, 8\]"):
        ParquetDataset(tmp_path / "d.parquet", sample_shape=(1, 8, 8))


def test_non_parquet_file(tmp_path):
    (tmp_path / "d.parquet").write_text("features,label\n1,2\n")
    with pytest.raises(UsageError, match=r"d.parquet: not a readable Parquet file"):
        ParquetDataset(tmp_path / "d.parquet")


def test_truncated_file(tmp_path):
    make_file(tmp_path / "d.parquet")
    data = (tmp_path / "d.parquet").read_bytes()
    (tmp_path / "d.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError, match=r"d.parquet: not a readable Parquet file"):
        ParquetDataset(tmp_path / "d.parquet")


def test_corrupt_data_pages_are_reported_on_read(tmp_path):
    make_file(tmp_path / "d.parquet", n=64, row_group_size=64)
    ds_ok = ParquetDataset(tmp_path / "d.parquet")
    data = bytearray((tmp_path / "d.parquet").read_bytes())
    # the footer stays intact; garble the column chunks in the middle of the file
    start = ds_ok._readers[0].metadata.row_group(0).column(0).data_page_offset
    data[start:start + 200] = bytes(200)
    (tmp_path / "d.parquet").write_bytes(bytes(data))
    ds = ParquetDataset(tmp_path / "d.parquet")
    with pytest.raises(UsageError, match=r"d.parquet: row group 0 is unreadable"):
        ds.take([0])


def test_missing_path_and_split(tmp_path):
    with pytest.raises(UsageError, match="no such file or directory.*distbp data prepare"):
        ParquetDataset(tmp_path / "nope", "train")
    make_file(tmp_path / "train.parquet")
    with pytest.raises(UsageError, match=r"no split 'test' \(expected test.parquet or test/"):
        ParquetDataset(tmp_path, "test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no .parquet files"):
        ParquetDataset(tmp_path / "empty")


def test_dataset_dir_needs_a_split(tmp_path):
    from distbp.data import prepare
    prepare("synthetic", tmp_path / "s")
    with pytest.raises(UsageError, match=r"is a distbp dataset: name a split, one of \['test', 'train'\]"):
        ParquetDataset(tmp_path / "s")


def test_bad_meta_json_is_named(tmp_path):
    make_file(tmp_path / "train.parquet")
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"meta.json: not a readable distbp meta.json"):
        ParquetDataset(tmp_path, "train")
    (tmp_path / "meta.json").write_text('{"columns": []}')
    with pytest.raises(UsageError, match=r"meta.json: not a distbp meta.json"):
        ParquetDataset(tmp_path, "train")
