using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Per-channel arithmetic of Batch Normalization done in managed code on the values of small (length C) CPU tensors.
/// The per-channel coefficients need a dozen tiny operations; as libtorch kernel calls each costs a few microseconds of
/// dispatch, which dominates small inputs (e.g. 512×128), while a loop over C values costs next to nothing.
/// Tensors are read and written through their memory (contiguous CPU float32 or float64 tensors only).
/// </summary>
internal static class ChannelMath
{
    /// <summary>Whether <paramref name="t"/> can be read and written here (CPU, contiguous, float32 or float64).</summary>
    public static bool Supports(Tensor t) =>
        t.device_type == DeviceType.CPU && t.is_contiguous() && t.dtype is ScalarType.Float32 or ScalarType.Float64;

    /// <summary>The values of a contiguous CPU float32/float64 tensor, as doubles.</summary>
    public static double[] Read(Tensor t)
    {
        var values = new double[t.numel()];
        if (t.dtype == ScalarType.Float32)
        {
            ReadOnlySpan<float> s = MemoryMarshal.Cast<byte, float>(t.bytes);
            for (int i = 0; i < values.Length; i++) values[i] = s[i];
        }
        else
        {
            MemoryMarshal.Cast<byte, double>(t.bytes).CopyTo(values);
        }

        return values;
    }

    /// <summary>A new tensor of <paramref name="shape"/> and <paramref name="dtype"/> holding <paramref name="values"/>.</summary>
    public static Tensor Create(ReadOnlySpan<double> values, long[] shape, ScalarType dtype)
    {
        var t = torch.empty(shape, dtype);
        Write(t, values);
        return t;
    }

    /// <summary>Overwrites the values of a contiguous CPU float32/float64 tensor.</summary>
    public static void Write(Tensor t, ReadOnlySpan<double> values)
    {
        if (t.dtype == ScalarType.Float32)
        {
            Span<float> s = MemoryMarshal.Cast<byte, float>(t.bytes);
            for (int i = 0; i < values.Length; i++) s[i] = (float)values[i];
        }
        else
        {
            values.CopyTo(MemoryMarshal.Cast<byte, double>(t.bytes));
        }
    }

    /// <summary>Whether <paramref name="t"/> is a one-element int64 CPU tensor (the batch counter).</summary>
    public static bool IsCpuInt64Scalar(Tensor t) => t.device_type == DeviceType.CPU && t.dtype == ScalarType.Int64 && t.numel() == 1;

    /// <summary>Adds one to a one-element int64 CPU tensor and returns the new value.</summary>
    public static long Increment(Tensor counter) => ++MemoryMarshal.Cast<byte, long>(counter.bytes)[0];

    /// <summary>The shape [1, C, 1, …] that broadcasts a per-channel tensor over <paramref name="x"/> (channels on axis 1).</summary>
    public static long[] BroadcastShape(Tensor x)
    {
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[1] = x.shape[1];
        return shape;
    }
}
