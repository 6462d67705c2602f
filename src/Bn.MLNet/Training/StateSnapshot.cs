using Bn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>
/// A copy of a network's whole state dict: parameters and buffers (BN running mean and variance, batch counters, input
/// standardization). The copies are allocated once and overwritten in place by <see cref="CopyFrom(BatchNormCnnNetwork)"/>, so taking a
/// snapshot every step allocates nothing.
/// </summary>
internal sealed class StateSnapshot : IDisposable
{
    private readonly List<(string Name, Tensor Copy)> _tensors = new();

    /// <summary>Allocates a copy of <paramref name="network"/>'s current state.</summary>
    public StateSnapshot(BatchNormCnnNetwork network)
    {
        using var noGrad = torch.no_grad();
        foreach ((string name, Tensor value) in network.state_dict())
        {
            _tensors.Add((name, value.detach().clone().DetachFromDisposeScope()));
        }
    }

    /// <summary>The copied tensors by state-dict name (a checkpoint writes and restores them).</summary>
    public IReadOnlyList<(string Name, Tensor Copy)> Tensors => _tensors;

    /// <summary>Overwrites the copy with <paramref name="network"/>'s current state.</summary>
    public void CopyFrom(BatchNormCnnNetwork network) => Copy(network, fromNetwork: true);

    /// <summary>Overwrites the copy with another snapshot of the same network.</summary>
    public void CopyFrom(StateSnapshot other)
    {
        using var noGrad = torch.no_grad();
        for (int i = 0; i < _tensors.Count; i++)
        {
            _tensors[i].Copy.copy_(other._tensors[i].Copy);
        }
    }

    /// <summary>Writes the copy back into <paramref name="network"/> (weights and buffers).</summary>
    public void CopyTo(BatchNormCnnNetwork network) => Copy(network, fromNetwork: false);

    /// <summary>Whether every floating-point tensor of the copy is free of NaN and infinity.</summary>
    public bool IsFinite()
    {
        using DisposeScope scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach ((_, Tensor t) in _tensors)
        {
            if (t.is_floating_point())
            {
                if (!torch.isfinite(t).all().item<bool>())
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>Names of the network's floating-point tensors that hold NaN or infinity (empty when all are finite).</summary>
    public static List<string> NonFiniteTensors(BatchNormCnnNetwork network)
    {
        var names = new List<string>();
        using DisposeScope scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach ((string name, Tensor t) in network.state_dict())
        {
            if (t.is_floating_point())
            {
                if (!torch.isfinite(t).all().item<bool>())
                {
                    names.Add(name);
                }
            }
        }

        return names;
    }

    public void Dispose()
    {
        foreach ((_, Tensor t) in _tensors)
        {
            t.Dispose();
        }

        _tensors.Clear();
    }

    private void Copy(BatchNormCnnNetwork network, bool fromNetwork)
    {
        using var noGrad = torch.no_grad();
        int i = 0;
        foreach ((string name, Tensor value) in network.state_dict())
        {
            (string savedName, Tensor copy) = _tensors[i++];
            if (savedName != name)
            {
                throw new InvalidOperationException($"The network's state changed while training: '{name}' where '{savedName}' was expected.");
            }

            if (fromNetwork)
            {
                copy.copy_(value);
            }
            else
            {
                value.copy_(copy);
            }
        }
    }
}
