"Figures of the tiny fixture notebook, drawn from its results tables only."
import matplotlib.pyplot as plt

def figures(tables):
    "name -> Figure, from the tables the notebook saved."
    values = tables["values"]
    fig, ax = plt.subplots()
    ax.bar(values["i"], values["value"])
    ax.set(xlabel="row", ylabel="value", title=f"{len(values)} seeded values")
    return {"values": fig}
