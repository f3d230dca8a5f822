"""The CuPy stand-in's ElementwiseKernel rejects the calls real CuPy rejects.

On the stand-in a kernel runs its NumPy reference, which would accept almost any
call; real CuPy checks the arguments against the declared parameters first. Each test
below makes one kind of mistake and expects CuPy's error (the message names CuPy's
own wording, so a reader can find it in CuPy's source: cupy/_core/_kernel.pyx).
Run with ``MINITRANSFORMER_FAKE_CUPY=1``.
"""
import numpy as np
import pytest

from tests import fake_cupy

pytestmark = pytest.mark.fakegpu

# Small kernels, one per way of declaring parameters. Their references compute what
# the CUDA body would, on NumPy arrays (the outputs are passed in too, then ignored).
SCALE = ("T x, T alpha", "T y", "y = alpha * x;", "fake_test_scale",
         lambda x, alpha, y: alpha * x)
GATHER = ("raw T table, int64 width", "T y", "y = table[i % width];", "fake_test_gather",
          lambda table, width, y: np.resize(table, y.shape))
FILL = ("T value", "raw T out", "out[i] = value;", "fake_test_fill",
        lambda value, out: np.full(out.shape, value, dtype=out.dtype))
COPY32 = ("float32 x", "float32 y", "y = x;", "fake_test_copy32", lambda x, y: x.copy())


@pytest.fixture
def kernel(monkeypatch):
    """make(SCALE) -> a stand-in ElementwiseKernel whose reference is registered."""
    def make(spec):
        in_params, out_params, operation, name, reference = spec
        monkeypatch.setitem(fake_cupy.kernel_references, name, reference)
        return fake_cupy.ElementwiseKernel(in_params, out_params, operation, name)
    return make


def device(values, dtype=np.float32):
    """A stand-in device array of ``values``."""
    return fake_cupy.asarray(np.asarray(values, dtype=dtype))


# ---------------------------------------------------------------- calls CuPy accepts
def test_right_calls_run_the_reference(kernel):
    scale, gather, fill = kernel(SCALE), kernel(GATHER), kernel(FILL)
    x, y = device([1.0, 2.0]), device([0.0, 0.0])
    # A Python float for a float32 ``T`` scalar: CuPy casts scalars to the parameter's type.
    assert scale(x, 0.5, y) is y
    assert y.get().tolist() == [0.5, 1.0]
    # Outputs may be left out: CuPy allocates them with the bound dtype.
    z = scale(device([[1.0], [2.0]], np.float64), 3)
    assert z.dtype == np.float64 and z.get().tolist() == [[3.0], [6.0]]
    # A raw input is not broadcast; a fixed-type scalar parameter takes a Python int.
    out = device(np.zeros((2, 3)))
    gather(device([1.0, 2.0, 3.0]), 3, out)
    assert out.get().tolist() == [[1.0, 2.0, 3.0]] * 2
    # Only raw arrays: the loop size comes from size=.
    raw = device(np.zeros(4))
    fill(2.5, raw, size=4)
    assert raw.get().tolist() == [2.5] * 4


def test_inputs_broadcast_against_the_outputs(kernel):
    # (2, 1) and (3,) broadcast to the output's (2, 3): CuPy allows this (the softmax
    # normalises a (…, S) output by (…, 1) sums this way).
    y = device(np.zeros((2, 3)))
    kernel(SCALE)(device([[1.0], [2.0]]), device([1.0, 10.0, 100.0]), y)
    assert y.get().tolist() == [[1.0, 10.0, 100.0], [2.0, 20.0, 200.0]]


def test_one_call_is_one_launch_and_an_empty_loop_none(kernel, gpu_stats):
    scale = kernel(SCALE)
    scale(device([1.0]), 2.0, device([0.0]))
    assert gpu_stats.launches == 1
    scale(device(np.zeros((0, 3))), 2.0, device(np.zeros((0, 3))))
    assert gpu_stats.launches == 1


# ---------------------------------------------------------------- one mistake each
def test_wrong_number_of_arguments(kernel):
    scale = kernel(SCALE)
    with pytest.raises(TypeError, match=r"Wrong number of arguments for 'fake_test_scale'\. "
                                        r"It must be either 2 or 3 \(with outputs\), but given 4"):
        scale(device([1.0]), 2.0, device([0.0]), device([0.0]))
    with pytest.raises(TypeError, match="but given 1"):
        scale(device([1.0]))


def test_unknown_keyword_argument(kernel):
    with pytest.raises(TypeError, match="Wrong arguments"):
        kernel(SCALE)(device([1.0]), 2.0, device([0.0]), out=None)


def test_a_placeholder_binds_one_dtype(kernel):
    with pytest.raises(TypeError, match=r"Type is mismatched.*alpha is float64, but T is "
                                        r"already float32"):
        kernel(SCALE)(device([1.0]), device([2.0], np.float64), device([0.0]))


def test_an_output_of_another_dtype_is_not_cast(kernel):
    # CuPy binds T from the outputs first, then finds the input disagrees.
    with pytest.raises(TypeError, match=r"Type is mismatched.*x is float64, but T is already "
                                        r"float32 \(from y\)"):
        kernel(SCALE)(device([1.0], np.float64), 2.0, device([0.0], np.float32))


def test_a_fixed_type_matches_exactly(kernel):
    with pytest.raises(TypeError, match="Type is mismatched.*x must be float32, got float64"):
        kernel(COPY32)(device([1.0], np.float64), device([0.0]))
    with pytest.raises(TypeError, match="width must be int64, got int32"):
        kernel(GATHER)(device([1.0]), device([1], np.int32), device([0.0]))


@pytest.mark.parametrize("value, error", [
    (float("nan"), ValueError),      # NaN has no integer value
    (2 ** 70, OverflowError),        # out of int64's range
    (1j, TypeError),                 # complex to an integer
])
def test_a_scalar_that_cannot_be_cast(kernel, value, error):
    with pytest.raises(error, match="scalar argument width=.* cannot be cast to int64"):
        kernel(GATHER)(device([1.0, 2.0]), value, device([0.0]))


@pytest.mark.parametrize("value", [np.array([2.0], dtype=np.float32), [2.0], "2.0", None])
def test_an_argument_that_is_neither_a_device_array_nor_a_scalar(kernel, value):
    with pytest.raises(TypeError, match="Unsupported type"):
        kernel(SCALE)(device([1.0]), value, device([0.0]))


def test_a_scalar_for_a_raw_parameter(kernel):
    with pytest.raises(TypeError, match="raw parameter table needs a cupy.ndarray, got float"):
        kernel(GATHER)(1.0, 1, device([0.0]))


def test_a_scalar_for_an_output(kernel):
    with pytest.raises(TypeError, match="Output arguments type must be cupy.ndarray"):
        kernel(SCALE)(device([1.0]), 2.0, 0.0)


def test_elementwise_arguments_that_do_not_broadcast(kernel):
    with pytest.raises(ValueError, match=r"could not be broadcast together with shapes "
                                         r"x \(2, 3\), alpha \(4,\)"):
        kernel(SCALE)(device(np.ones((2, 3))), device(np.ones(4)), device(np.zeros((2, 3))))


def test_an_output_smaller_than_the_loop(kernel):
    # The output broadcasts with the inputs to (2, 3), but is (3,): CuPy writes outputs
    # whole, it does not reduce into them.
    with pytest.raises(ValueError, match=r"Out shape is mismatched.*y has shape \(3,\), the "
                                         r"loop shape .* is \(2, 3\)"):
        kernel(SCALE)(device(np.ones((2, 3))), 2.0, device(np.zeros(3)))


def test_size_with_an_elementwise_array(kernel):
    with pytest.raises(ValueError, match="Specified 'size' can be used only if all of the "
                                         "ndarray are 'raw'"):
        kernel(SCALE)(device([1.0]), 2.0, device([0.0]), size=1)


def test_no_size_and_no_elementwise_array(kernel):
    with pytest.raises(ValueError, match="Loop size is undecided"):
        kernel(FILL)(2.5, device(np.zeros(4)))


def test_a_raw_output_left_out_without_size(kernel):
    with pytest.raises(ValueError, match="Output array size is Undecided"):
        kernel(FILL)(device([2.5]))


def test_a_placeholder_that_only_scalars_use(kernel):
    # Scalars take their parameter's type; they do not decide it.
    with pytest.raises(TypeError, match="the type T of x is undecided"):
        kernel(SCALE)(1.0, 2.0, size=3)


def test_a_reference_that_changes_the_dtype(kernel):
    # Not a CuPy rule: the stand-in would cast the reference's float64 into the float32
    # output without a word, and the CPU path's upcast would go unseen.
    name = "fake_test_upcast"
    scale = kernel(("T x", "T y", "y = x;", name, lambda x, y: x.astype(np.float64)))
    with pytest.raises(TypeError, match="returned float64 for output y, which is float32"):
        scale(device([1.0]), device([0.0]))


@pytest.mark.parametrize("in_params, out_params, operation, name, message", [
    ("T x", "T y", "y = x;", "not-a-name", "Invalid kernel name"),
    ("T i", "T y", "y = i;", "k", "Can not use 'i' as a parameter name"),
    ("const T x", "T y", "y = x;", "k", "unknown keyword 'const'"),
    ("T x,", "T y", "y = x;", "k", "syntax error in parameter ''"),
    ("T x, T unused", "T y", "y = x;", "k", "parameter 'unused' is never used"),
    ("T x, T x", "T y", "y = x;", "k", r"parameters \['x'\] are declared twice"),
])
def test_a_kernel_declared_wrongly(in_params, out_params, operation, name, message):
    with pytest.raises(ValueError, match=message):
        fake_cupy.ElementwiseKernel(in_params, out_params, operation, name)
