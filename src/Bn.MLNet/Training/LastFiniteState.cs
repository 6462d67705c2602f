using Bn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>
/// Keeps the last state of a network known to be good, so that a diverged run can hand back a network that scores
/// finite values: every tensor of it (weights and buffers) finite, its eval-mode scores of a few training rows finite,
/// and the training forward pass from it gave a finite loss.
/// </summary>
/// <remarks>
/// <para>Why the buffers and the eval-mode probe: a diverged step spoils the network in several ways. The optimizer step
/// before it can already have written NaN or infinite weights while its own loss was finite (the loss is computed
/// before the update); the forward pass that produces the non-finite loss has already updated the BN running mean,
/// variance and batch counter in training mode; and huge but finite weights can give finite training-mode outputs
/// (normalized by the batch's own statistics) while the eval-mode outputs, normalized by the running averages of
/// earlier batches, overflow. Keeping the weights alone, or checking only the loss, returns a network whose eval-mode
/// scores are NaN.</para>
/// <para>Cost: each step copies the whole state dict (parameters and buffers) into a spare snapshot before its forward
/// pass; the spare becomes the "last" snapshot once that step's loss is finite (the two swap roles, so nothing is
/// allocated per step). Every <see cref="VerifyEverySteps"/> steps the state is also probed in eval mode on
/// <see cref="ProbeRows"/> rows and checked for NaN and infinity, and kept as the "verified" snapshot. <see cref="Restore"/>
/// checks the last snapshot the same way and falls back to the verified one.</para>
/// </remarks>
internal sealed class LastFiniteState : IDisposable
{
    /// <summary>Rows of a batch scored in eval mode to check a state.</summary>
    public const int ProbeRows = 8;

    /// <summary>Steps between two verified snapshots.</summary>
    public const int VerifyEverySteps = 20;

    private readonly StateSnapshot _verified;
    private StateSnapshot _last;
    private StateSnapshot _candidate;
    private long _candidateStep = -1;
    private bool _candidateVerified;
    private long? _lastStep;
    private long? _verifiedStep;
    private Tensor? _probe;

    public LastFiniteState(BatchNormCnnNetwork network)
    {
        _last = new StateSnapshot(network);
        _candidate = new StateSnapshot(network);
        _verified = new StateSnapshot(network);
    }

    /// <summary>
    /// Copies the state that step <paramref name="step"/> starts from (after <paramref name="step"/> optimizer steps);
    /// every <see cref="VerifyEverySteps"/> steps also checks it on the first rows of <paramref name="batch"/>. Call before
    /// the step's forward pass.
    /// </summary>
    public void Capture(BatchNormCnnNetwork network, long step, Tensor batch)
    {
        _candidate.CopyFrom(network);
        _candidateStep = step;
        _candidateVerified = false;
        if (_probe is null || _verifiedStep is null || step - _verifiedStep >= VerifyEverySteps)
        {
            _probe?.Dispose();
            _probe = batch.narrow(0, 0, Math.Min(ProbeRows, batch.shape[0])).detach().clone().DetachFromDisposeScope();
            _candidateVerified = _candidate.IsFinite() && ScoresFinite(network, _probe);
        }
    }

    /// <summary>The captured state's forward pass gave a finite loss: it becomes the last good state.</summary>
    public void Confirm()
    {
        if (_candidateVerified)
        {
            _verified.CopyFrom(_candidate);
            _verifiedStep = _candidateStep;
        }

        (_last, _candidate) = (_candidate, _last);
        _lastStep = _candidateStep;
        _candidateStep = -1;
    }

    /// <summary>Whether <paramref name="network"/>'s eval-mode scores of the probe rows are finite.</summary>
    public bool CurrentScoresFinite(BatchNormCnnNetwork network) => _probe is null || ScoresFinite(network, _probe);

    /// <summary>
    /// Writes the last good state back into <paramref name="network"/> (weights and buffers) and returns the optimizer
    /// steps behind it; null when there is none. With null the network is unchanged, except when the last state with a
    /// finite loss was written back but its eval-mode scores were not finite and no verified state exists: then it holds
    /// that state.
    /// </summary>
    public long? Restore(BatchNormCnnNetwork network)
    {
        if (_lastStep is long last && _last.IsFinite())
        {
            _last.CopyTo(network);
            if (CurrentScoresFinite(network))
            {
                return last;
            }
        }

        if (_verifiedStep is long verified)
        {
            _verified.CopyTo(network);
            return verified;
        }

        return null;
    }

    public void Dispose()
    {
        _last.Dispose();
        _candidate.Dispose();
        _verified.Dispose();
        _probe?.Dispose();
    }

    /// <summary>Eval mode, no_grad: no buffer changes and no dropout draws, so training is not disturbed.</summary>
    private static bool ScoresFinite(BatchNormCnnNetwork network, Tensor rows)
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
