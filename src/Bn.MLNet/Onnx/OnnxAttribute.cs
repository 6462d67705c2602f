namespace Bn.MLNet.Onnx;

/// <summary>A node attribute of type INT, INTS or FLOAT (AttributeProto.AttributeType 2, 7, 1).</summary>
internal readonly struct OnnxAttribute
{
    private readonly string _name;
    private readonly long[]? _ints;
    private readonly long _int;
    private readonly float? _float;

    private OnnxAttribute(string name, long value, long[]? values, float? f)
    {
        _name = name;
        _int = value;
        _ints = values;
        _float = f;
    }

    public static OnnxAttribute Int(string name, long value) => new(name, value, null, null);

    public static OnnxAttribute Ints(string name, params long[] values) => new(name, 0, values, null);

    public static OnnxAttribute FloatValue(string name, float value) => new(name, 0, null, value);

    public ProtoWriter ToProto()
    {
        var a = new ProtoWriter().String(1, _name);
        if (_float is float f)
        {
            return a.Float(2, f).Int64(20, 1);
        }

        if (_ints is not null)
        {
            // repeated int64 ints = 8 is not declared packed in onnx.proto (proto2): one tag per value.
            foreach (long v in _ints)
            {
                a.Int64(8, v);
            }

            return a.Int64(20, 7);
        }

        return a.Int64(3, _int).Int64(20, 2);
    }
}
