using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Bn.MLNet.Networks;

/// <summary>
/// Group Normalization (Wu &amp; He 2018) over N×C×… input, with PyTorch's <c>nn.GroupNorm</c> parameters and state-dict
/// keys (<c>weight</c> = 1, <c>bias</c> = 0 at start). Used instead of TorchSharp 0.107's <c>nn.GroupNorm</c> module,
/// which leaves its affine parameters uninitialized (<c>torch.empty</c>, no reset) and refuses N×C input.
/// </summary>
internal sealed class GroupNormLayer : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private readonly Parameter _weight;

    [ComponentName(Name = "bias")]
    private readonly Parameter _bias;

    private readonly long _groups;
    private readonly double _eps;

    public GroupNormLayer(long groups, long channels, double eps)
        : base("GroupNorm")
    {
        _groups = groups;
        _eps = eps;
        _weight = nn.Parameter(torch.ones(channels));
        _bias = nn.Parameter(torch.zeros(channels));
        RegisterComponents();
    }

    /// <summary>Number of groups.</summary>
    public long Groups => _groups;

    /// <summary>ε added to the variance.</summary>
    public double Eps => _eps;

    public override Tensor forward(Tensor input)
    {
        if (input.dim() >= 3)
        {
            return nn.functional.group_norm(input, _groups, _weight, _bias, _eps);
        }

        using DisposeScope scope = torch.NewDisposeScope();
        Tensor y = nn.functional.group_norm(input.unsqueeze(-1), _groups, _weight, _bias, _eps).squeeze(-1);
        return y.MoveToOuterDisposeScope();
    }
}
