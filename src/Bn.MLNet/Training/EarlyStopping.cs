using Bn.MLNet.Networks;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>
/// Follows the validation metric epoch by epoch (<see cref="TrainerOptions.EarlyStoppingMetric"/>): remembers the best
/// epoch and, with <see cref="TrainerOptions.RestoreBestWeights"/>, a <see cref="StateSnapshot"/> of its state; tells when
/// <see cref="TrainerOptions.EarlyStoppingPatience"/> epochs in a row brought no improvement.
/// </summary>
internal sealed class EarlyStopping(TrainerOptions options) : IDisposable
{
    private StateSnapshot? _best;
    private double _bestMetric = double.NegativeInfinity;
    private int _epochsWithoutImprovement;

    /// <summary>The best validation metric so far (−∞ before any).</summary>
    public double BestMetric => _bestMetric;

    /// <summary>Epochs since the best one.</summary>
    public int EpochsWithoutImprovement => _epochsWithoutImprovement;

    /// <summary>The best epoch's kept state, or null.</summary>
    public IReadOnlyList<(string Name, Tensor Copy)>? BestState => _best?.Tensors;

    /// <summary>Continues a run from a checkpoint: the counters, and the tensors to fill with its best state.</summary>
    public IReadOnlyList<(string Name, Tensor Copy)> Resume(double bestMetric, int epochsWithoutImprovement, BatchNormCnnNetwork network)
    {
        (_bestMetric, _epochsWithoutImprovement) = (bestMetric, epochsWithoutImprovement);
        _best ??= new StateSnapshot(network);
        return _best.Tensors;
    }

    /// <summary>
    /// Records epoch <paramref name="epoch"/>'s validation result (an improvement becomes <see cref="TrainingHistory.BestEpoch"/>);
    /// returns whether the patience is used up.
    /// </summary>
    public bool PatienceExhausted(int epoch, EvaluationResult validation, BatchNormCnnNetwork network, TrainingHistory history)
    {
        double metric = options.EarlyStoppingMetric == EarlyStoppingMetric.ValidationAccuracy && network.Architecture.Task != NetworkTask.Regression
            ? validation.Accuracy
            : -validation.Loss;
        if (metric > _bestMetric)   // a NaN metric (a diverged epoch) is never an improvement
        {
            _bestMetric = metric;
            history.BestEpoch = epoch;
            _epochsWithoutImprovement = 0;
            if (options.RestoreBestWeights)
            {
                if (_best is null)
                {
                    _best = new StateSnapshot(network);
                }
                else
                {
                    _best.CopyFrom(network);
                }
            }

            return false;
        }

        _epochsWithoutImprovement++;
        return options.EarlyStoppingPatience is int patience && _epochsWithoutImprovement >= patience;
    }

    /// <summary>
    /// Writes the best epoch's state back when it was kept and is not the state training ended with (a later epoch, or
    /// divergence); sets <see cref="TrainingHistory.RestoredBestWeights"/>.
    /// </summary>
    public void RestoreBest(BatchNormCnnNetwork network, TrainingHistory history)
    {
        if (_best is not null && history.BestEpoch is int bestEpoch
            && (history.Epochs.Count == 0 || history.Epochs[^1].Epoch != bestEpoch || history.Diverged))
        {
            _best.CopyTo(network);
            history.RestoredBestWeights = true;
        }
    }

    public void Dispose()
    {
        _best?.Dispose();
        _best = null;
    }
}
