using Bn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>
/// Keeps the last state of a network known to be good, so that a diverged run can hand back a network that scores
/// finite values. A state is good when every tensor of it (weights and buffers) is finite, its eval-mode scores of a
/// few rows of the step's batch are finite, and the training forward pass from it gave a finite loss.
/// </summary>
/// <remarks>
/// Why all three checks and why the buffers: a diverged step spoils the network in several ways. The optimizer step
/// before it can already have written NaN or infinite weights while its own loss was finite (the loss is computed
/// before the update); the forward pass that produces the non-finite loss has already updated the BN running mean,
/// variance and batch counter in training mode; and huge but finite weights can give finite training-mode outputs
/// (normalized by the batch's own statistics) while the eval-mode outputs, normalized by the running averages of
/// earlier batches, overflow. Keeping the weights alone, or checking only the loss, returns a network whose eval-mode
/// scores are NaN. Each step therefore copies the whole state dict (parameters and buffers) before its forward pass
/// into a spare snapshot and probes it in eval mode on <see cref="ProbeRows"/> rows; the spare becomes the good one
/// once that step's loss is finite. The two snapshots swap roles, so nothing large is allocated per step.
/// </remarks>
internal sealed class LastFiniteState : IDisposable
{
    /// <summary>Rows of each batch scored in eval mode to check a state.</summary>
    public const int ProbeRows = 8;

    private StateSnapshot _good;
    private StateSnapshot _candidate;
    private long _candidateStep = -1;
    private bool _candidateScoresFinite;
    private Tensor? _probe;

    public LastFiniteState(BnCnn network)
    {
        _good = new StateSnapshot(network);
        _candidate = new StateSnapshot(network);
    }

    /// <summary>Optimizer steps behind the good state (0: the initial network), or null while none was confirmed.</summary>
    public long? GoodStep { get; private set; }

    /// <summary>
    /// Copies the state that step <paramref name="step"/> starts from (after <paramref name="step"/> optimizer steps),
    /// probes it in eval mode on the first rows of <paramref name="batch"/>, and tells whether all of its tensors are
    /// finite. Call before the step's forward pass.
    /// </summary>
    public bool Capture(BnCnn network, long step, Tensor batch)
    {
        _candidate.CopyFrom(network);
        _candidateStep = step;
        _probe?.Dispose();
        _probe = batch.narrow(0, 0, Math.Min(ProbeRows, batch.shape[0])).detach().clone().DetachFromDisposeScope();
        if (!_candidate.IsFinite())
        {
            _candidateScoresFinite = false;
            return false;
        }

        _candidateScoresFinite = ScoresFinite(network, _probe);
        return true;
    }

    /// <summary>The captured state's forward pass gave a finite loss: it becomes the good state if its probe was finite.</summary>
    public void Confirm()
    {
        if (!_candidateScoresFinite)
        {
            return;
        }

        (_good, _candidate) = (_candidate, _good);
        GoodStep = _candidateStep;
        _candidateStep = -1;
        _candidateScoresFinite = false;
    }

    /// <summary>Whether <paramref name="network"/>'s current eval-mode scores of the last probed rows are finite.</summary>
    public bool CurrentScoresFinite(BnCnn network) => _probe is null || ScoresFinite(network, _probe);

    /// <summary>Writes the good state back into <paramref name="network"/>; false when there is none.</summary>
    public bool Restore(BnCnn network)
    {
        if (GoodStep is null)
        {
            return false;
        }

        _good.CopyTo(network);
        return true;
    }

    public void Dispose()
    {
        _good.Dispose();
        _candidate.Dispose();
        _probe?.Dispose();
    }

    /// <summary>Eval mode, no_grad: no buffer changes and no dropout draws, so training is not disturbed.</summary>
    private static bool ScoresFinite(BnCnn network, Tensor rows)
    {
        bool wasTraining = network.training;
        using DisposeScope scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        network.eval();
        try
        {
            Tensor p = nn.functional.softmax(network.call(rows), 1);
            return torch.isfinite(p).all().item<bool>();
        }
        finally
        {
            if (wasTraining)
            {
                network.train();
            }
        }
    }
}
