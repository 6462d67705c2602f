using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// The paper's Algorithm 2, steps 8–11 (Ioffe &amp; Szegedy, ICML 2015): after training, replace every Batch
/// Normalization layer's moving averages by population statistics computed over a stream of training mini-batches,
/// E[x] = E_B[μ_B] and Var[x] = m/(m − 1)·E_B[σ²_B], where m is the number of values per channel in a mini-batch.
/// </summary>
public static class PopulationStatistics
{
    /// <summary>
    /// Feeds <paramref name="inputBatches"/> through <paramref name="network"/> (forward only, under no_grad, with the
    /// network in training mode as in the paper's training network, so every layer sees inputs normalized with
    /// mini-batch statistics), records μ_B and σ²_B of every <see cref="BatchNorm1d"/>/<see cref="BatchNorm2d"/>
    /// inside it (including <paramref name="network"/> itself) that tracks running statistics, and then sets
    /// <c>running_mean</c> = E_B[μ_B] and <c>running_var</c> = E_B[m_B/(m_B − 1)·σ²_B] (equal to the paper's
    /// m/(m − 1)·E_B[σ²_B] when all batches have the same size).
    /// </summary>
    /// <remarks>
    /// While the batches run, the layers' moving averages and <c>num_batches_tracked</c> are left untouched (the
    /// batch statistics go to an accumulator instead), so an interrupted call leaves the previous values in place.
    /// Every module's training/evaluation mode is restored afterwards. Other modules (e.g. dropout) run in training
    /// mode during the pass, as in the paper's training network.
    /// </remarks>
    /// <param name="network">A network containing Batch Normalization layers of this library.</param>
    /// <param name="inputBatches">Training mini-batches, each a valid input of <paramref name="network"/>.</param>
    /// <returns>The number of mini-batches processed.</returns>
    /// <exception cref="ArgumentException">The network has no such layer, or the stream is empty.</exception>
    public static int Recompute(nn.Module<Tensor, Tensor> network, IEnumerable<Tensor> inputBatches)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(inputBatches);

        var layers = AllModules(network).Select(x => x.module).OfType<BatchNormBase>()
            .Where(l => l.TrackRunningStats).Distinct().ToList();
        if (layers.Count == 0)
            throw new ArgumentException("The network contains no BatchNorm1d/BatchNorm2d layer that tracks running statistics.", nameof(network));

        // Remember every module's mode; restore parents before children because train(bool) recurses.
        var modes = AllModules(network).Select(x => (x.module, x.depth, x.module.training)).ToList();
        int batches = 0;
        try
        {
            foreach (var layer in layers) layer.Collector = new PopulationAccumulator();
            network.train();
            using (torch.no_grad())
            {
                foreach (var input in inputBatches)
                {
                    using var scope = torch.NewDisposeScope();
                    network.forward(input);
                    batches++;
                }
            }

            if (batches == 0)
                throw new ArgumentException("The stream of mini-batches is empty.", nameof(inputBatches));

            foreach (var layer in layers)
            {
                var acc = layer.Collector!;
                if (acc.Count == 0)
                    throw new InvalidOperationException($"A {layer.GetType().Name} layer of the network received no input during the pass.");
                using var mean = acc.MeanSum! / acc.Count;
                using var variance = acc.UnbiasedVarSum! / acc.Count;
                layer.SetRunningStatistics(mean, variance);
            }
        }
        finally
        {
            foreach (var layer in layers)
            {
                layer.Collector?.Dispose();
                layer.Collector = null;
            }

            foreach (var (module, _, wasTraining) in modes.OrderBy(x => x.depth))
                module.train(wasTraining);
        }

        return batches;
    }

    private static IEnumerable<(nn.Module module, int depth)> AllModules(nn.Module network)
    {
        yield return (network, 0);
        foreach (var (name, module) in network.named_modules())
            yield return (module, 1 + name.Count(c => c == '.'));
    }
}

/// <summary>Running sums of μ_B and m_B/(m_B − 1)·σ²_B over the batches of one layer, in float64.</summary>
internal sealed class PopulationAccumulator : IDisposable
{
    public Tensor? MeanSum { get; private set; }

    public Tensor? UnbiasedVarSum { get; private set; }

    public int Count { get; private set; }

    public void Add(Tensor batchMean, Tensor biasedVar, long m)
    {
        using var noGrad = torch.no_grad();
        using var mean64 = batchMean.to(ScalarType.Float64);
        using var var64 = biasedVar.to(ScalarType.Float64) * ((double)m / (m - 1));
        if (MeanSum is null)
        {
            MeanSum = mean64.clone().DetachFromDisposeScope();
            UnbiasedVarSum = var64.clone().DetachFromDisposeScope();
        }
        else
        {
            MeanSum.add_(mean64);
            UnbiasedVarSum!.add_(var64);
        }

        Count++;
    }

    public void Dispose()
    {
        MeanSum?.Dispose();
        UnbiasedVarSum?.Dispose();
    }
}
