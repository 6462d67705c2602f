using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Normalization;

internal static class TestUtil
{
    /// <summary>A seed derived from <paramref name="text"/> that is the same in every process (FNV-1a), unlike string.GetHashCode.</summary>
    public static ulong StableSeed(string text)
    {
        ulong hash = 14695981039346656037UL;
        foreach (char ch in text)
        {
            hash = (hash ^ ch) * 1099511628211UL;
        }

        return hash & 0x7fffffffUL;
    }

    /// <summary>
    /// Relative error used throughout: max|a − b| / max(max|b|, 1e-300), computed in float64 (b is the reference).
    /// </summary>
    public static double RelErr(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = torch.NewDisposeScope();
        var a = actual.detach().to(ScalarType.Float64);
        var b = expected.detach().to(ScalarType.Float64);
        double diff = (a - b).abs().max().item<double>();
        double scale = Math.Max(b.abs().max().item<double>(), 1e-300);
        Assert.False(double.IsNaN(diff), "NaN in compared tensors");
        return diff / scale;
    }

    public static void AssertClose(Tensor actual, Tensor expected, double tol, string what)
    {
        double err = RelErr(actual, expected);
        Assert.True(err <= tol, $"{what}: relative error {err:E3} > {tol:E1}");
    }

    public static double Tolerance(ScalarType dtype) => dtype == ScalarType.Float64 ? 1e-11 : 2e-5;
}
