using System.Runtime.InteropServices;

namespace Bn.MLNet.Onnx;

/// <summary>
/// An ONNX graph under construction (nodes in topological order, float and int64 initializers, typed inputs and
/// outputs, metadata) and its serialization as an ONNX <c>ModelProto</c>. Field numbers are those of onnx/onnx.proto:
/// ModelProto (ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7, opset_import 8,
/// metadata_props 14); GraphProto (node 1, name 2, initializer 5, input 11, output 12); NodeProto (input 1, output 2,
/// name 3, op_type 4, attribute 5); AttributeProto (name 1, f 2, i 3, ints 8, type 20); TensorProto (dims 1,
/// data_type 2, name 8, raw_data 9); ValueInfoProto (name 1, type 2); TypeProto (tensor_type 1); TypeProto.Tensor
/// (elem_type 1, shape 2); TensorShapeProto (dim 1); Dimension (dim_value 1, dim_param 2); OperatorSetIdProto
/// (domain 1, version 2); StringStringEntryProto (key 1, value 2).
/// </summary>
internal sealed class OnnxGraph
{
    /// <summary>The default-domain operator set the graph uses (every op here exists unchanged in ONNX Runtime 1.17+).</summary>
    public const int OpsetVersion = 17;

    /// <summary>The IR version written (IR 8 goes with opset 17).</summary>
    public const int IrVersion = 8;

    /// <summary>TensorProto.DataType FLOAT.</summary>
    public const int Float32 = 1;

    /// <summary>TensorProto.DataType INT64.</summary>
    public const int Int64Type = 7;

    /// <summary>ONNX TensorProto element type of booleans.</summary>
    public const int Bool = 9;

    private readonly List<ProtoWriter> _nodes = new();
    private readonly List<ProtoWriter> _initializers = new();
    private readonly List<ProtoWriter> _inputs = new();
    private readonly List<ProtoWriter> _outputs = new();
    private readonly List<KeyValuePair<string, string>> _metadata = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private int _nodeCount;

    /// <summary>Adds a float32 constant; returns its name.</summary>
    public string Constant(string name, long[] dims, float[] values)
    {
        long count = dims.Aggregate(1L, (a, d) => a * d);
        if (count != values.Length)
        {
            throw new InvalidOperationException($"Constant '{name}' has {values.Length} values for dimensions [{string.Join(", ", dims)}].");
        }

        Claim(name);
        byte[] raw = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("ONNX export writes little-endian tensor data; this machine is big-endian.");
        }

        _initializers.Add(new ProtoWriter().PackedInt64(1, dims).Int64(2, Float32).String(8, name).Bytes(9, raw));
        return name;
    }

    /// <summary>Adds a one-dimensional int64 constant (a shape); returns its name.</summary>
    public string Int64Constant(string name, long[] values)
    {
        Claim(name);
        byte[] raw = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        _initializers.Add(new ProtoWriter().PackedInt64(1, new long[] { values.Length }).Int64(2, Int64Type).String(8, name).Bytes(9, raw));
        return name;
    }

    /// <summary>Adds a node with one output named <paramref name="output"/>; returns the output name.</summary>
    public string Node(string opType, string[] inputs, string output, params OnnxAttribute[] attributes)
    {
        Claim(output);
        var node = new ProtoWriter();
        foreach (string input in inputs)
        {
            node.String(1, input);
        }

        node.String(2, output).String(3, $"{opType}_{_nodeCount++}").String(4, opType);
        foreach (OnnxAttribute a in attributes)
        {
            node.Message(5, a.ToProto());
        }

        _nodes.Add(node);
        return output;
    }

    /// <summary>Declares a graph input with a symbolic first dimension <paramref name="batchDimension"/>.</summary>
    public void Input(string name, int elementType, string batchDimension, params long[] dims)
    {
        Claim(name);
        _inputs.Add(ValueInfo(name, elementType, batchDimension, dims));
    }

    /// <summary>Declares an existing value as a graph output with a symbolic first dimension.</summary>
    public void Output(string name, int elementType, string batchDimension, params long[] dims)
    {
        if (!_names.Contains(name))
        {
            throw new InvalidOperationException($"Output '{name}' is not produced by any node.");
        }

        _outputs.Add(ValueInfo(name, elementType, batchDimension, dims));
    }

    /// <summary>Adds a metadata_props entry.</summary>
    public void Metadata(string key, string value) => _metadata.Add(new(key, value));

    /// <summary>Whether a value of this name exists already.</summary>
    public bool Contains(string name) => _names.Contains(name);

    /// <summary>Serializes the graph as an ONNX ModelProto.</summary>
    public byte[] ToModel(string graphName, string producerVersion, string docString)
    {
        var graph = new ProtoWriter();
        _nodes.ForEach(n => graph.Message(1, n));
        graph.String(2, graphName);
        _initializers.ForEach(t => graph.Message(5, t));
        _inputs.ForEach(v => graph.Message(11, v));
        _outputs.ForEach(v => graph.Message(12, v));

        var model = new ProtoWriter()
            .Int64(1, IrVersion)
            .String(2, "Bn.MLNet")
            .String(3, producerVersion)
            .String(6, docString)
            .Message(7, graph)
            .Message(8, new ProtoWriter().String(1, string.Empty).Int64(2, OpsetVersion));
        foreach ((string key, string value) in _metadata)
        {
            model.Message(14, new ProtoWriter().String(1, key).String(2, value));
        }

        return model.ToArray();
    }

    private static ProtoWriter ValueInfo(string name, int elementType, string batchDimension, long[] dims)
    {
        var shape = new ProtoWriter().Message(1, new ProtoWriter().String(2, batchDimension));
        foreach (long d in dims)
        {
            shape.Message(1, new ProtoWriter().Int64(1, d));
        }

        var tensorType = new ProtoWriter().Int64(1, elementType).Message(2, shape);
        return new ProtoWriter().String(1, name).Message(2, new ProtoWriter().Message(1, tensorType));
    }

    private void Claim(string name)
    {
        if (!_names.Add(name))
        {
            throw new NotSupportedException(
                $"ONNX export: the value name '{name}' would be used twice in the graph; a column name (FeatureColumnName, ScoreColumnName, " +
                "EmbeddingColumnName, PredictedLabelColumnName + \"Index\") equals another column name or an internal value name (such as 'flatten' or 'logits').");
        }
    }
}
