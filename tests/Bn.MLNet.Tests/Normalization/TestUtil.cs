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

    /// <summary>
    /// Asserts that each <paramref name="analytic"/> gradient equals central differences (step 1e-6) of
    /// <paramref name="loss"/> with respect to the tensor at the same index of <paramref name="wrt"/>, within a relative
    /// error of 1e-7. Each value of <paramref name="wrt"/> is moved in place and put back.
    /// </summary>
    public static void AssertMatchesCentralDifferences(Func<double> loss, Tensor[] wrt, Tensor[] analytic)
    {
        const double h = 1e-6;
        for (int k = 0; k < wrt.Length; k++)
        {
            var flat = wrt[k].detach().view(-1); // shares storage with the parameter / input
            var numeric = torch.zeros(flat.shape[0], ScalarType.Float64);
            for (long i = 0; i < flat.shape[0]; i++)
            {
                double v = flat[i].item<double>();
                flat[i] = v + h;
                double plus = loss();
                flat[i] = v - h;
                double minus = loss();
                flat[i] = v;
                numeric[i] = (plus - minus) / (2 * h);
            }

            double err = RelErr(analytic[k].view(-1), numeric);
            Assert.True(err < 1e-7, $"gradient {k}: relative error {err:E3} against central differences");
        }
    }

    public static void AssertClose(Tensor actual, Tensor expected, double tol, string what)
    {
        double err = RelErr(actual, expected);
        Assert.True(err <= tol, $"{what}: relative error {err:E3} > {tol:E1}");
    }

    public static double Tolerance(ScalarType dtype) => dtype == ScalarType.Float64 ? 1e-11 : 2e-5;
}
