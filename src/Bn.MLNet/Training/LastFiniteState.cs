using Bn.MLNet.Networks;

namespace Bn.MLNet.Training;

/// <summary>
/// Keeps the last state of a network known to be good, so that a diverged run can hand back a network that scores
/// finite values. A state is good when every tensor of it (weights and buffers) is finite and the training forward
/// pass from it gave a finite loss.
/// </summary>
/// <remarks>
/// Why both checks and why the buffers: a diverged step spoils the network in two ways. The optimizer step before it
/// can already have written NaN or infinite weights while its own loss was finite (the loss is computed before the
/// update), and the forward pass that produces the non-finite loss has already updated the BN running mean, variance
/// and batch counter in training mode. Keeping the weights alone, or checking only the loss, returns a network whose
/// eval-mode scores are NaN. Each step therefore copies the whole state dict (parameters and buffers) before its
/// forward pass into a spare snapshot, and the spare becomes the good one once that step's loss is finite; the two
/// snapshots swap roles, so nothing is allocated per step.
/// </remarks>
internal sealed class LastFiniteState : IDisposable
{
    private StateSnapshot _good;
    private StateSnapshot _candidate;
    private long _candidateStep = -1;

    public LastFiniteState(BnCnn network)
    {
        _good = new StateSnapshot(network);
        _candidate = new StateSnapshot(network);
    }

    /// <summary>Optimizer steps behind the good state (0: the initial network), or null while none was confirmed.</summary>
    public long? GoodStep { get; private set; }

    /// <summary>
    /// Copies the state that step <paramref name="step"/> starts from (after <paramref name="step"/> optimizer steps) and
    /// tells whether all of it is finite. Call before the step's forward pass.
    /// </summary>
    public bool Capture(BnCnn network, long step)
    {
        _candidate.CopyFrom(network);
        _candidateStep = step;
        return _candidate.IsFinite();
    }

    /// <summary>Marks the captured state as good: its forward pass gave a finite loss.</summary>
    public void Confirm()
    {
        (_good, _candidate) = (_candidate, _good);
        GoodStep = _candidateStep;
        _candidateStep = -1;
    }

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
    }
}
