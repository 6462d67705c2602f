using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Networks;

/// <summary>
/// The 15th, 50th and 85th percentiles of a layer's input (the paper's figure 1b/1c), on at most a given number of its
/// values drawn with a fixed private generator, so libtorch's global random stream is untouched.
/// </summary>
internal static class PercentileProbe
{
    private const ulong SampleSeed = 12345;

    public static LayerPercentiles Measure(string name, Tensor x, int maxSample)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Tensor flat = x.detach().flatten();
        long count = flat.numel();
        if (count > maxSample)
        {
            using var generator = new Generator(SampleSeed);
            flat = flat.index_select(0, torch.randint(count, new long[] { maxSample }, ScalarType.Int64, generator: generator).to(flat.device));
        }

        Tensor q = torch.quantile(flat.to_type(ScalarType.Float32), torch.tensor(new float[] { 0.15f, 0.5f, 0.85f }, device: flat.device));
        float[] v = q.cpu().data<float>().ToArray();
        return new LayerPercentiles(name, v[0], v[1], v[2]);
    }
}
