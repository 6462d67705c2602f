using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Networks;

/// <summary>
/// Builds a network's layers with initial weights drawn from a private generator, leaving libtorch's global random
/// stream as it was: TorchSharp's modules draw their weights from the global generator when they are constructed, so
/// its state is saved before and put back after, and every convolution and linear layer is then drawn again, in
/// construction order, exactly as TorchSharp draws it (weight: Kaiming-uniform with a = √5, i.e. U(−b, b) with
/// b = √3·√(2/(1 + a²))/√fan_in; bias: U(−1/√fan_in, 1/√fan_in)). The result equals what
/// <c>torch.manual_seed(seed)</c> followed by construction gives.
/// </summary>
internal static class SeededInitialization
{
    public static NetworkLayers Build(NetworkArchitecture a, DropoutRandom dropoutRandom, int seed)
    {
        NetworkLayers layers;
        using (Tensor saved = torch.random.get_rng_state())
        {
            try
            {
                layers = NetworkLayers.Build(a, dropoutRandom);
            }
            finally
            {
                torch.random.set_rng_state(saved);
            }
        }

        using var generator = new Generator((ulong)seed);
        using var noGrad = torch.no_grad();
        foreach (nn.Module layer in layers.WeightedLayers())
        {
            Redraw(layer, generator);
        }

        return layers;
    }

    /// <summary>Draws the weight and then the bias of one layer, as TorchSharp's constructors do.</summary>
    private static void Redraw(nn.Module layer, Generator generator)
    {
        Tensor weight = Parameter(layer, "weight")!;
        long fanIn = weight.shape.Skip(1).Aggregate(1L, (p, d) => p * d);
        double a = Math.Sqrt(5);
        double gain = Math.Sqrt(2.0 / (1 + Math.Pow(a, 2)));
        double bound = Math.Sqrt(3.0) * (gain / Math.Sqrt(fanIn));
        weight.uniform_(-bound, bound, generator);
        if (Parameter(layer, "bias") is { } bias && fanIn > 0)
        {
            double biasBound = 1 / Math.Sqrt(fanIn);
            bias.uniform_(-biasBound, biasBound, generator);
        }
    }

    private static Tensor? Parameter(nn.Module module, string name) =>
        module.named_parameters(recurse: false).FirstOrDefault(p => p.name == name).parameter;
}
