using Bn.MLNet.Networks;
using TorchSharp.Modules;

namespace Bn.MLNet.Training;

/// <summary>
/// <see cref="TrainerOptions.FreezeConvolutionStages"/> for one training call: the convolution stages' parameters stop
/// requiring gradients (so the optimizer leaves them out and no gradient is computed for them), and get their flag
/// back when training ends; meanwhile the network keeps the stages in eval mode, so their normalization keeps its statistics.
/// </summary>
internal sealed class FrozenStages : IDisposable
{
    private readonly List<Parameter> _frozen = new();
    private readonly BatchNormCnnNetwork? _network;

    public FrozenStages(BatchNormCnnNetwork network, bool freeze)
    {
        if (!freeze)
            return;
        _network = network;
        network.ConvolutionStagesFrozen = true;
        foreach (var layer in network.Layers.Features)
        {
            foreach (Parameter p in layer.parameters().Where(p => p.requires_grad))
            {
                p.requires_grad = false;
                _frozen.Add(p);
            }
        }
    }

    public void Dispose()
    {
        foreach (Parameter p in _frozen)
            p.requires_grad = true;
        _frozen.Clear();
        if (_network is not null)
            _network.ConvolutionStagesFrozen = false;
    }
}
