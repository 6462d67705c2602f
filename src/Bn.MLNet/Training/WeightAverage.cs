using Bn.MLNet.Networks;
using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>
/// The exponential moving average of a network's state (<see cref="TrainerOptions.WeightAveragingDecay"/>): a shadow copy of
/// every float32/float64 tensor of the state dict, parameters and buffers alike, updated after each optimizer step by
/// shadow ← d·shadow + (1 − d)·value with d = min(decay, (1 + t)/(10 + t)), t the updates before this one.
/// </summary>
/// <remarks>
/// <para>Buffers: the BN running mean and variance are averaged like the weights rather than copied, so they describe the
/// averaged network about as well as the running statistics describe the raw one (copying the raw statistics would pair
/// the averaged weights with the statistics of the last weights). The input standardization buffers do not change during
/// training, so averaging keeps them. Integer buffers (batch counters) and other dtypes are not shadowed: the network
/// keeps its own, which is the same as copying them.</para>
/// <para>Cost: one <c>lerp_</c> per tensor and step, under no_grad in one dispose scope; the weight 1 − d lives in a
/// preallocated 0-dimensional tensor per dtype, written through its memory, so a step allocates no Scalar and no buffer.</para>
/// </remarks>
internal sealed class WeightAverage : IDisposable
{
    private readonly List<(string Name, Tensor Live, Tensor Shadow)> _entries = new();
    private readonly Dictionary<ScalarType, Tensor> _weights = new();
    private readonly double _decay;

    /// <summary>Starts the average at <paramref name="network"/>'s current state.</summary>
    public WeightAverage(BatchNormCnnNetwork network, double decay)
    {
        _decay = decay;
        using var noGrad = torch.no_grad();
        foreach ((string name, Tensor value) in network.state_dict())
        {
            if (value.dtype is ScalarType.Float32 or ScalarType.Float64)
            {
                _entries.Add((name, value, value.detach().clone().DetachFromDisposeScope()));
                if (!_weights.ContainsKey(value.dtype))
                {
                    _weights[value.dtype] = torch.zeros(Array.Empty<long>(), value.dtype).DetachFromDisposeScope();
                }
            }
        }
    }

    /// <summary>Updates done (a checkpoint restores it).</summary>
    public long Updates { get; set; }

    /// <summary>The averaged tensors by state-dict name (a checkpoint writes and restores them).</summary>
    public IReadOnlyList<(string Name, Tensor Shadow)> Shadows => _entries.Select(e => (e.Name, e.Shadow)).ToList();

    /// <summary>The decay used by the update after <paramref name="updates"/> updates: min(decay, (1 + t)/(10 + t)).</summary>
    public static double EffectiveDecay(double decay, long updates) => Math.Min(decay, (1.0 + updates) / (10.0 + updates));

    /// <summary>Folds the network's current state into the average; call after each optimizer step.</summary>
    public void Update()
    {
        double d = EffectiveDecay(_decay, Updates);
        ReadOnlySpan<double> weight = stackalloc double[] { 1 - d };
        foreach (Tensor w in _weights.Values)
        {
            ChannelMath.Write(w, weight);
        }

        using DisposeScope scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach ((_, Tensor live, Tensor shadow) in _entries)
        {
            shadow.lerp_(live, _weights[shadow.dtype]);
        }

        Updates++;
    }

    /// <summary>Names of the averaged tensors that hold NaN or infinity (empty when all are finite).</summary>
    public List<string> NonFiniteTensors()
    {
        var names = new List<string>();
        using DisposeScope scope = torch.NewDisposeScope();
        foreach ((string name, _, Tensor shadow) in _entries)
        {
            if (!torch.isfinite(shadow).all().item<bool>())
            {
                names.Add(name);
            }
        }

        return names;
    }

    /// <summary>
    /// Writes the average into the network when it is finite and at least one update was made, and records in
    /// <paramref name="history"/> whether it did (<see cref="TrainingHistory.UsedWeightAverage"/>) and, if not, why.
    /// </summary>
    public bool TryApply(TrainingHistory history)
    {
        List<string> nonFinite = NonFiniteTensors();
        if (Updates == 0 || nonFinite.Count > 0)
        {
            history.UsedWeightAverage = false;
            history.WeightAverageNote = Updates == 0
                ? "no optimizer step was made; the network keeps its weights"
                : $"the averaged weights are not finite ({string.Join(", ", nonFinite)}); the network keeps its raw weights";
            return false;
        }

        using var noGrad = torch.no_grad();
        foreach ((_, Tensor live, Tensor shadow) in _entries)
        {
            live.copy_(shadow);
        }

        history.UsedWeightAverage = true;
        return true;
    }

    /// <summary>Exchanges the network's state and the average (calling it twice puts both back), for scoring the average.</summary>
    public void Swap()
    {
        using DisposeScope scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach ((_, Tensor live, Tensor shadow) in _entries)
        {
            Tensor raw = live.clone();
            live.copy_(shadow);
            shadow.copy_(raw);
        }
    }

    public void Dispose()
    {
        foreach ((_, _, Tensor shadow) in _entries)
        {
            shadow.Dispose();
        }

        foreach (Tensor w in _weights.Values)
        {
            w.Dispose();
        }

        _entries.Clear();
        _weights.Clear();
    }
}
